// Many images on several threads: the batch entry points of the bindings
// run whole images in parallel, each thread with its own workspaces (the
// thread_local stores in workspace.hpp).
#pragma once
#include <pthread.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <vector>

namespace dcts {

// The first item that failed, in item order (index -1: none did).
struct ItemError {
    int64_t index = -1;
    std::exception_ptr error;
};

// Calls f(i) once for every i in `order` on up to `threads` threads, the
// calling thread among them (threads <= 1: all on the calling thread, no
// thread started). Items are claimed one at a time in `order`, so listing
// the largest first balances the threads. An item that throws does not stop
// the others: every item runs, and the error of the lowest index is
// returned, as a plain loop over the items would have raised it first.
ItemError parallel_for(const std::vector<int64_t>& order, int threads,
                       const std::function<void(int64_t)>& f);

// Registers, once, fork handlers that take the process-wide mutex M before
// fork() and release it after, in parent and child: otherwise a child forked
// while another thread held M could never take it.
template <std::mutex& M>
void keep_fork_safe() {
    static std::once_flag once;
    std::call_once(once, [] {
        pthread_atfork([] { M.lock(); }, [] { M.unlock(); }, [] { M.unlock(); });
    });
}

// Indices 0..n-1 by decreasing cost (stable for equal costs).
std::vector<int64_t> largest_first(const std::vector<int64_t>& cost);

}  // namespace dcts
