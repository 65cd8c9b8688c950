"""Rate limits, concurrency limits and budgets, per key, user, model and globally.

``checks``   what a request asks for (Demand, Check) and the answer (Verdict)
``gcra``     the rate algorithm (requests and tokens per minute)
``periods``  budget periods (day, week, month, total)
``base``     the Limiter interface
``memory``   one process's limiter (the default, and the fallback of the Redis one)
``redis_limiter``, ``scripts``   the shared, exact limiter: one Lua script per admission
``headers``  ``x-ratelimit-*`` headers and the 429 errors
``service``  `Limits`: what the request path calls (admit, finish) and the outcome observer
"""
