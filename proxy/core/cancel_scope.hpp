// Lets a batch stop all of its outstanding work at once (client gone, batch
// deadline passed): every item registers how to abort what it is waiting on
// (cancel a socket, a timer) for as long as it waits on it.
#pragma once

#include <functional>
#include <list>

namespace batchgate {

enum class cancel_reason { none, client_gone, deadline };

class cancel_scope {
public:
    class registration {
    public:
        registration(cancel_scope& scope, std::function<void()> canceller)
            : scope_(scope), it_(scope.cancellers_.insert(scope.cancellers_.end(), std::move(canceller))) {
            if (scope.reason_ != cancel_reason::none) (*it_)();  // already cancelled: abort at once
        }
        ~registration() { scope_.cancellers_.erase(it_); }
        registration(const registration&) = delete;
        registration& operator=(const registration&) = delete;

    private:
        cancel_scope& scope_;
        std::list<std::function<void()>>::iterator it_;
    };

    void cancel(cancel_reason why) {
        if (reason_ != cancel_reason::none) return;
        reason_ = why;
        for (auto& c : cancellers_) c();
    }
    cancel_reason reason() const { return reason_; }
    bool cancelled() const { return reason_ != cancel_reason::none; }

private:
    cancel_reason reason_ = cancel_reason::none;
    std::list<std::function<void()>> cancellers_;
};

}  // namespace batchgate
