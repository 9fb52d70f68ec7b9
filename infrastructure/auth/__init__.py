"""Authentication and abuse limits shared by both services (security issue 6).

* :mod:`.tokens` -- signed tokens, :class:`~.tokens.Principal`, :class:`~.tokens.Role`;
* :mod:`.passwords` -- argon2 hashes and the agent accounts from settings;
* :mod:`.dependencies` -- FastAPI dependencies: who is calling, may they see this session;
* :mod:`.limits` -- stream slots, rate limits, JSON depth, ``Last-Event-ID`` parsing;
* :mod:`.logging` -- keeps tokens out of uvicorn's logs.

Nothing is imported here, so that the token CLI does not pull in FastAPI.
"""
