"""Authentication and abuse limits shared by both services (security issue 6).

* :mod:`.tokens` -- signed tokens, :class:`~.tokens.Principal`, :class:`~.tokens.Role`;
* :mod:`.passwords` -- argon2 hashes and the agent accounts from settings;
* :mod:`.dependencies` -- FastAPI dependencies: who is calling, may they see this session;
* :mod:`.limits` -- stream slots, JSON depth;
* :mod:`.rate_limit` -- token buckets per token (messages, 转人工) and their 429;
* :mod:`.logging` -- keeps tokens out of uvicorn's logs.

Nothing is imported here, so that the token CLI does not pull in FastAPI.
"""
