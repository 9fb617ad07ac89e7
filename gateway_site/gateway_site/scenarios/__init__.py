"""What the gateway does, shared by the REST API (api/) and the pages (web/): views parse input, call a
scenario here, and render its answer. `services` changes things (and writes the audit log), `selectors` reads
(with each role's visibility applied), `predicting` is the one prediction path (admission, batching, history),
`limits` the per-user rate limits. Only these modules talk to peer services (gateway_site.peers)."""
