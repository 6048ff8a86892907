"""encode_batch / decode_batch: the same results as one image at a time, on
any number of threads, with errors that name the image."""

import gc
import multiprocessing
import threading

import numpy as np
import pytest

import dctsparse
from dctsparse.sparse import SparseDCT
from helpers import natural_image


def mixed_images():
    """RGB and greyscale, odd sizes, more images than threads."""
    rgb = [
        natural_image(n)[: 60 + 13 * i, : 50 + 11 * i]
        for i, n in enumerate(["astronaut", "chelsea", "coffee", "rocket"])
    ]
    grey = [natural_image("camera")[:77, :91], natural_image("moon")[:33, :200]]
    return [rgb[0], grey[0], rgb[1], rgb[2], grey[1], rgb[3], rgb[0][:17, :5]]


@pytest.mark.parametrize(
    "settings",
    [dict(), dict(block_size=16, subsampling="4:4:4"), dict(block_size=5, quality=30, order="luma_first", clip=9)],
)
@pytest.mark.parametrize("threads", [1, 2, 4])
def test_batch_equals_one_image_at_a_time(settings, threads):
    imgs = mixed_images()
    one = [dctsparse.encode(im, **settings) for im in imgs]
    many = dctsparse.encode_batch(imgs, threads=threads, **settings)
    assert many == one
    out = dctsparse.decode_batch(many, threads=threads)
    for a, s in zip(out, one, strict=True):
        want = dctsparse.decode(s)
        assert a.dtype == want.dtype and a.shape == want.shape
        np.testing.assert_array_equal(a, want)


def test_decoded_images_are_independent_arrays():
    items = dctsparse.encode_batch(mixed_images())
    out = dctsparse.decode_batch(items, threads=2)
    before = [a.copy() for a in out]
    for a in out:
        assert a.flags.c_contiguous and a.flags.writeable
    out[1][...] = 7  # one image's memory does not overlap another's
    for k, (a, b) in enumerate(zip(out, before, strict=True)):
        if k != 1:
            np.testing.assert_array_equal(a, b)
    assert not any(np.shares_memory(out[i], out[j]) for i in range(len(out)) for j in range(i + 1, len(out)))


def test_encoded_lists_do_not_overlap():
    # The batch's lists share one allocation: no two arrays may overlap.
    items = dctsparse.encode_batch(mixed_images(), threads=2)
    arrays = [a for s in items for a in (s.channel, s.position, s.value)]
    assert all(a.flags.c_contiguous and a.dtype == np.int32 for a in arrays)
    assert not any(
        np.shares_memory(arrays[i], arrays[j]) for i in range(len(arrays)) for j in range(i + 1, len(arrays))
    )


def test_single_encode_lists_share_one_buffer_safely():
    # encode's three arrays are views of one allocation (SparseList, cpp/common.hpp):
    # they must not overlap, and any one of them keeps the buffer alive.
    img = mixed_images()[0]
    s = dctsparse.encode(img)
    arrays = (s.channel, s.position, s.value)
    assert all(a.flags.c_contiguous and a.dtype == np.int32 and len(a) == len(s) for a in arrays)
    assert not any(np.shares_memory(arrays[i], arrays[j]) for i, j in ((0, 1), (0, 2), (1, 2)))
    want = s.value.copy()
    value = s.value
    del s, arrays
    gc.collect()
    junk = [np.full(1 << 16, -1, np.int32) for _ in range(64)]  # reuse of freed memory shows
    np.testing.assert_array_equal(value, want)
    del junk
    batch = dctsparse.encode_batch([img], threads=1)[0]
    np.testing.assert_array_equal(batch.value, want)
    flat = dctsparse.encode(np.full((16, 16, 3), 128, np.uint8))  # no non-zero at all
    assert len(flat) == 0 and flat.channel.shape == (0,)


def test_empty_batches():
    assert dctsparse.encode_batch([]) == []
    assert dctsparse.decode_batch([]) == []


def test_one_image_alone_is_refused():
    """Issue 19: encode_batch(img) iterated over the rows of an (H, W, 3) array and
    returned H greyscale images of W x 3 pixels."""
    from PIL import Image

    img = natural_image("chelsea")[:40, :50]
    for one in (img, img[..., 0], np.dstack([img, img[..., :1]]), Image.fromarray(img)):
        with pytest.raises(TypeError, match=r"list of images.*pass \[image\]"):
            dctsparse.encode_batch(one)
    # a list, and stacks of RGB and of greyscale images, are batches
    want = [dctsparse.encode(img), dctsparse.encode(img[::-1])]
    assert dctsparse.encode_batch([img, img[::-1]]) == want
    assert dctsparse.encode_batch(np.stack([img, img[::-1]])) == want
    grey = np.stack([img[..., 0], img[::-1, :, 0]])
    assert dctsparse.encode_batch(grey) == [dctsparse.encode(g) for g in grey]


def test_encode_error_names_the_first_bad_image():
    imgs = mixed_images()
    imgs[3] = np.zeros((4, 4, 3), np.float32)
    imgs[5] = np.zeros((0, 4, 3), np.uint8)
    with pytest.raises((TypeError, ValueError), match=r"^image 3: "):
        dctsparse.encode_batch(imgs, threads=2)
    imgs[3] = imgs[0]
    with pytest.raises(ValueError, match=r"^image 5: "):
        dctsparse.encode_batch(imgs, threads=2)


def test_decode_error_names_the_first_bad_image():
    items = dctsparse.encode_batch(mixed_images())

    def corrupt(s):  # a position past the image, smuggled past SparseDCT's checks
        p = s.position.copy()
        p[0] = 10**6
        return SparseDCT._trusted(s.channel, p, s.value, s)

    # [0, 5]: the batch runs largest first, so image 5 fails before image 0 does
    for bad in ([4], [2, 6], [0, 5]):
        broken = [corrupt(s) if k in bad else s for k, s in enumerate(items)]
        for threads in (1, 3):
            with pytest.raises(ValueError, match=rf"^image {bad[0]}: .*position"):
                dctsparse.decode_batch(broken, threads=threads)
    with pytest.raises(TypeError, match=r"^image 1: "):
        dctsparse.decode_batch([items[0], "not a list"])
    with pytest.raises(ValueError, match="threads"):
        dctsparse.decode_batch(items, threads=0)


def test_concurrent_batches_from_python_threads():
    # The native pool runs one batch at a time; the others start threads of their own.
    imgs = mixed_images()
    want = [dctsparse.encode(im, quality=60) for im in imgs]
    got, errors = {}, []

    def run(k):
        try:
            got[k] = dctsparse.encode_batch(imgs, threads=2, quality=60)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors and len(got) == 4
    assert all(g == want for g in got.values())


def _child_encode(queue):
    s = dctsparse.encode_batch(mixed_images(), threads=2)
    queue.put([len(x) for x in s])


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork here")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_batches_work_in_a_forked_child():
    dctsparse.encode_batch(mixed_images(), threads=2)  # the parent's pool exists now
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_encode, args=(q,))
    p.start()
    got = q.get(timeout=60)
    p.join(timeout=60)
    assert p.exitcode == 0
    assert got == [len(dctsparse.encode(im)) for im in mixed_images()]


def test_chunks_cover_the_batch_within_the_limits(monkeypatch):
    from dctsparse import batch

    monkeypatch.setattr(batch, "CHUNK_IMAGES", 3)
    monkeypatch.setattr(batch, "CHUNK_PIXELS", 1000)
    pixels = [10, 2000, 400, 400, 300, 5, 5, 5, 5, 999]
    chunks = list(batch._chunks(pixels))
    assert [i for a, b in chunks for i in range(a, b)] == list(range(len(pixels)))
    for a, b in chunks:
        assert 1 <= b - a <= 3
        assert b - a == 1 or sum(pixels[a:b]) <= 1000  # an oversized image goes alone
    assert list(batch._chunks([])) == []


def test_chunked_batches_equal_one_at_a_time_and_name_the_global_index(monkeypatch):
    from dctsparse import batch

    monkeypatch.setattr(batch, "CHUNK_IMAGES", 2)
    imgs = mixed_images()
    one = [dctsparse.encode(im) for im in imgs]
    many = dctsparse.encode_batch(imgs, threads=2)
    assert many == one
    for a, s in zip(dctsparse.decode_batch(many, threads=2), one, strict=True):
        np.testing.assert_array_equal(a, dctsparse.decode(s))

    p = one[5].position.copy()
    p[0] = 10**6  # a position past the image, in the third chunk
    broken = list(many)
    broken[5] = SparseDCT._trusted(one[5].channel, p, one[5].value, one[5])
    with pytest.raises(ValueError, match=r"^image 5: .*position"):
        dctsparse.decode_batch(broken, threads=2)
