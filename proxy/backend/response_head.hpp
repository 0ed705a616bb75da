// What a backend's answer heads mean, decided once for HTTP/1.1 and h2, for
// batch items and pass-through alike: a response is zero or more interim
// (1xx) heads, then one final head, then (h2, chunked HTTP/1.1) trailers.
// 101 is refused (batchgate does not tunnel upgraded connections; in h2 it is
// meaningless, RFC 9113 §8.6), more than max_interim_responses interim heads
// is a backend that never answers, and a status that is not three digits in
// 100..999 is malformed. A client of batchgate never sees a backend's 1xx.
#pragma once

#include <string_view>

namespace batchgate {

enum class head_kind {
    interim,              // 100, 103, …: consumed, wait for the next head
    final,                // the answer: its fields and body are the response
    after_final,          // a later block (trailers): not passed on
    switching_protocols,  // 101: the exchange fails
    too_many_interim,     // the exchange fails
    malformed,            // the exchange fails
};

inline bool ends_exchange(head_kind k) {
    return k == head_kind::switching_protocols || k == head_kind::too_many_interim || k == head_kind::malformed;
}

// The heads of one response, in arrival order.
class response_heads {
public:
    // An HTTP/1.1 status line's code (Beast parsed it) or an h2 `:status`.
    head_kind on_status(unsigned status);
    head_kind on_status_text(std::string_view digits);

    // HTTP/2 only: a header block began. Until its `:status` arrives, a
    // block before the final head counts as malformed (a head without a
    // status); one after the final head is trailers.
    void on_block_begin() { current_ = have_final_ ? head_kind::after_final : head_kind::malformed; }
    // What the block being received is (its fields go to the response only
    // when it is the final head).
    head_kind current() const { return current_; }

    bool have_final() const { return have_final_; }
    unsigned final_status() const { return final_status_; }

private:
    int interim_ = 0;
    bool have_final_ = false;
    unsigned final_status_ = 0;
    head_kind current_ = head_kind::malformed;
};

}  // namespace batchgate
