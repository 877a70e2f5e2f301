// jemalloc's settings for the herald binary, read by jemalloc when it
// starts (MALLOC_CONF in the environment still overrides them). Linked only
// when herald is built with jemalloc (HERALD_ALLOCATOR, the default).
//
// Memory freed by a server that goes quiet (the frame state of connections
// that park, the buffers of a drained burst) should leave RSS within
// seconds, not wait for allocations that may never come:
//  - background_thread: purging runs on jemalloc's own thread instead of
//    inside later malloc calls;
//  - dirty_decay_ms 1000: pages left unused for about a second are purged
//    (the default, 10 s, kept 1.1 KB per parked connection in RSS after
//    `herald bench connect`);
//  - muzzy_decay_ms 0: purged pages are returned (MADV_DONTNEED), not only
//    marked lazily freeable, which leaves them counted in RSS.
extern "C" {
// NOLINTNEXTLINE: the name and type are jemalloc's interface.
extern const char* malloc_conf;
const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
}
