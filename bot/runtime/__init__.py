"""The running service: start-up and shutdown, the HTTP server and routes, the durable intake, workers, scheduler."""
