# shellcheck shell=bash
# Scenario files of the stream benchmarks (sourced by events.sh and
# streams.sh): the relay of tests/streams_support, acme's token from
# RELAY_ACME_TOKEN.

# Writes the event-latency journey (subscribe, create, await) to $1.
write_event_journey() {
    cat >"$1" <<'TOML'
name = "event-latency"

[auth]
kind = "token"

[identities.acme]
tenant = "acme"
token = "{{ env.RELAY_ACME_TOKEN }}"

[[step]]
name = "orders"
as = "acme"
path = "/t/{{ tenant }}/events"
[step.subscribe]
kind = "sse"

[[step]]
name = "create order"
as = "acme"
method = "POST"
path = "/t/{{ tenant }}/orders"
status = 201
capture = { order_id = "/id" }

[[step]]
name = "order created"
[step.await]
stream = "orders"
since = "create order"
event = "order.status"
timeout = "5s"
checks = [{ json = "/order_id", equals = "{{ order_id }}" }]
TOML
}

# Writes the holding journey to $1: subscribe ($2: sse or ws), then watch
# the stream for $3 (a marker no event carries) while it is held.
write_hold_journey() {
    local path=events
    [[ $2 == ws ]] && path=ws
    cat >"$1" <<TOML
name = "hold-$2"

[auth]
kind = "token"

[identities.acme]
tenant = "acme"
token = "{{ env.RELAY_ACME_TOKEN }}"

[[step]]
name = "orders"
as = "acme"
path = "/t/{{ tenant }}/$path"
[step.subscribe]
kind = "$2"

[[step]]
name = "hold"
[step.stream_isolation]
stream = "orders"
markers = ["no-event-carries-this"]
timeout = "$3"
TOML
}
