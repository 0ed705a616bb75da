#include "proxy/core/exchange.hpp"

namespace batchgate {

asio::awaitable<bool> response_sink::send_problem(http::status status, std::string_view detail,
                                                  problem_position where, unsigned retry_after_seconds) {
    response_head head;
    head.status = static_cast<unsigned>(status);
    head.headers.set(http::field::content_type, "application/problem+json");
    head.headers.set(http::field::cache_control, "no-store");
    if (retry_after_seconds != 0) head.headers.set(http::field::retry_after, std::to_string(retry_after_seconds));
    auto body = problem_json(status, detail, where);
    co_return co_await send_answer(std::move(head), std::move(body));
}

}  // namespace batchgate
