// Template members of server; included by server.hpp only.
#pragma once

#include <boost/asio/post.hpp>

#include <future>

namespace batchgate {

template <class Fn>
auto server::on_worker(unsigned index, Fn fn) -> decltype(fn(std::declval<worker&>())) {
    using result_type = decltype(fn(std::declval<worker&>()));
    std::packaged_task<result_type()> task([&] { return fn(*workers_.at(index)); });
    auto future = task.get_future();
    asio::post(workers_.at(index)->context, [&task] { task(); });
    return future.get();
}

}  // namespace batchgate
