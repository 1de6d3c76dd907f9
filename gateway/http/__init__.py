"""HTTP plumbing under the routes: the middleware (request id, body limit, metrics) and the
server-sent-event response with its disconnect watching."""
