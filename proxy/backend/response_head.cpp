#include "proxy/backend/response_head.hpp"

#include "proxy/core/http_semantics.hpp"

#include <charconv>

namespace batchgate {

head_kind response_heads::on_status(unsigned status) {
    if (have_final_) return current_ = head_kind::after_final;  // a second :status after the answer: ignored
    if (status < 100 || status > 999) return current_ = head_kind::malformed;
    if (status == 101) return current_ = head_kind::switching_protocols;
    if (status < 200) {
        if (++interim_ > max_interim_responses) return current_ = head_kind::too_many_interim;
        return current_ = head_kind::interim;
    }
    have_final_ = true;
    final_status_ = status;
    return current_ = head_kind::final;
}

head_kind response_heads::on_status_text(std::string_view digits) {
    unsigned status = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), status);
    if (digits.size() != 3 || ec != std::errc() || end != digits.data() + digits.size())
        return current_ = head_kind::malformed;
    return on_status(status);
}

}  // namespace batchgate
