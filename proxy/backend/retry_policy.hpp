// Whether to try a backend request again, as one pure function for batch
// items and both pass-through paths (PRODUCT.md §3, README "Decisions →
// Retries" and "GOAWAY and refused streams"). The callers say what one
// attempt came to in protocol-neutral words; the wording of a failure stays
// theirs (a B: condition for an item, problem+json for pass-through).
#pragma once

#include "proxy/config/config.hpp"

#include <chrono>
#include <optional>
#include <string_view>

namespace batchgate {

// Uniform in [0, 1), from a per-thread generator: the jitter of a retry's pause.
double retry_jitter();

// What one attempt came to.
enum class attempt_event {
    answered,          // a final answer: retried only for a status in retries.on
    queue_timeout,     // no connection or stream free within queue_timeout: never retried
    connect_failed,    // refused, unreachable, TLS rejected
    connect_timeout,
    refused,           // HTTP/2: never processed (REFUSED_STREAM, above GOAWAY's last id, never sent)
    stale_connection,  // HTTP/1.1: a reused keep-alive connection closed before a byte of answer
    reset,             // connection lost or stream reset: the backend may have acted on it
    timeout,           // no (whole) answer within the backend's timeout
    unusable,          // too large, malformed, 101, only interim: another try would not help
};

struct attempt_report {
    attempt_event event = attempt_event::answered;
    unsigned status = 0;                                  // answered: the status
    std::optional<std::chrono::seconds> retry_after;     // answered: Retry-After, when given in seconds
};

// The request's side of the question.
struct retry_request {
    const retry_config& retries;
    // It may be sent again after the backend could have acted on it: an
    // idempotent method whose body batchgate still holds whole.
    bool replayable = false;
    // All of the body that went out is still held (refused streams are
    // replayed whatever the method, but only with their whole body).
    bool body_held = true;
    std::chrono::steady_clock::duration time_left{};  // until the item's (or request's) deadline
    // Uniform in [0, 1): the share of the backoff ceiling to wait. Called
    // only when a counted retry is decided, so an answered item draws none.
    double (*jitter)() = retry_jitter;
};

// Where the request is: `attempt` counts the tries that counted (1 = the
// first); the one free replay (a refused stream, a stale connection) is
// not an attempt.
struct retry_progress {
    unsigned attempt = 1;
    bool free_replay_used = false;
};

enum class retry_verdict {
    deliver,  // the answer stands (answered, and no retry wanted or possible)
    retry,    // send it again after `pause`
    give_up,  // the caller turns the event into its failure answer
};

struct retry_decision {
    retry_verdict verdict = retry_verdict::deliver;
    std::chrono::steady_clock::duration pause{};
    bool counted = false;  // a retry that uses one of retries.attempts (else the free replay)
};

// Decides, and when the verdict is retry advances `progress` (attempt or
// free replay). A counted retry waits jitter × min(backoff.max, backoff.base ×
// 2^(retry − 1)) ("full jitter"); a status retry waits Retry-After instead
// when that is longer. A pause that does not fit in time_left is no retry:
// the answer is delivered, or the failure given up. A free replay goes at
// once.
retry_decision decide_retry(const attempt_report& report, const retry_request& request, retry_progress& progress);

// Pass-through: only failures are retried (an answer's head goes to the
// client as it is), and no deadline but the backend's own timeouts applies.
retry_decision retry_pass_through(attempt_event event, const retry_config& retries, bool replayable, bool body_held,
                                  retry_progress& progress);



// A Retry-After value in delta-seconds; the HTTP-date form (and anything
// else) counts as absent.
std::optional<std::chrono::seconds> retry_after_seconds(std::string_view value);

}  // namespace batchgate
