// Package bench is a load generator for any OpenStack Zaqar v2 endpoint:
// Cistern, the Python Zaqar, or anything else that speaks the API. The
// cistern-bench command is its front end.
//
// A run has three kinds of workers, each a goroutine with its own
// Client-ID and a keep-alive connection:
//
//   - producers POST batches of Batch messages, each body Size bytes of
//     JSON, with the given ttl;
//   - consumers claim up to ClaimLimit messages (ClaimTTL, ClaimGrace) and
//     DELETE each one with its claim id, or, with Pop > 0, DELETE
//     ?pop=Pop;
//   - observers GET the first ListLimit messages (echo=true).
//
// Each role's workers are spread over Queues queues round robin (worker i
// uses queue i mod Queues), so producer i and consumer i share a queue.
// The queues, named Prefix0, Prefix1, ..., are created with PUT first and
// deleted at the end unless Keep is set.
//
// A run is setup, Warmup (load, not measured), the measured window, a
// drain of the requests in flight, and teardown. The window lasts
// Duration or, when Messages > 0, until that many messages have been
// posted (producers stop there) and consumed, with Duration as the upper
// bound. A request is measured when it starts after the window opens and
// ends before it closes. The whole run, setup and teardown included, ends
// by Config.Deadline() (Warmup + Duration + Grace) even if the server
// stops answering: requests still in flight then are cut off and counted
// as aborted.
//
// The report has messages posted and consumed (deleted with a claim id or
// popped) per second; requests per second, latency percentiles (p50, p90,
// p99, max; successful requests only, from a log-linear histogram good to
// 1 %) and errors by HTTP status for each operation; the queues that could
// not be deleted at the end, by the same classes; and, when MetricsURL
// serves the Prometheus counter cistern_store_requests_total, how many
// object-store requests the server made per posted and per consumed
// message in the window (the counter is scraped as the window opens and
// as it closes, so background work the server does meanwhile counts too).
package bench
