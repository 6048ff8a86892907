from .train.hostmem import reexec_with_hugepages

reexec_with_hugepages()  # as python -m dctmodel.train does

from .train import main  # noqa: E402

main()
