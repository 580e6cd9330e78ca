"""The websocket transport: ``WSHandler`` (:mod:`.ws_handler`: the handshake's checks, then
one greenlet reading frames and a lock guarding writes), the socket it reads and writes
(:mod:`.ws_socket`), permessage-deflate (:mod:`.ws_compression`), and passing a connection
to the worker that owns its session (:mod:`.descriptor_passing`)."""
