// Lock contracts written where they apply, as Clang's thread-safety attributes. gcc ignores them;
// under clang they are checked only with -Wthread-safety, and then only once the mutexes are
// annotated types (std::shared_mutex in libstdc++ is not), so today they are precise documentation:
// GUARDED_BY names the lock a member is read and written under, REQUIRES the lock a function's
// caller holds exclusively, REQUIRES_SHARED one held at least shared, EXCLUDES one that the
// function takes itself (the caller must not hold it), RELEASE one it is given held and lets go.
#pragma once

#if defined(__clang__)
#define VLUNFS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define VLUNFS_THREAD_ANNOTATION(x)
#endif

#define GUARDED_BY(x) VLUNFS_THREAD_ANNOTATION(guarded_by(x))
#define REQUIRES(...) VLUNFS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) VLUNFS_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define EXCLUDES(...) VLUNFS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define RELEASE(...) VLUNFS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
