"""Dead letters: events a consumer gave up on, kept in its service's database.

The consumer (`gonghui_shared.bus.consumer`) stores them after `max_deliver`
failed deliveries, or at once when a message cannot be parsed, and publishes a
copy on `<root>.deadletter.<durable>`. `GET /v1/dead-letters` lists them and
`POST /v1/dead-letters/{id}/replay` applies one again through the same handler
and inbox, for platform and county admins (`bus.admin`). Every service with
consumers gets both endpoints from `create_service_app`.
(Modules are imported by their full names: the consumer uses the repository,
and the endpoints use the runtime, which holds the consumers.)
"""
