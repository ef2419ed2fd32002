"""`Event`, what an event handler receives: lymph's Event API (`event['key']`,
`evt_type`, `body`, `headers`) plus the trace id and the delivery attempt."""


class Event:
    def __init__(self, evt_type, body, source=None, headers=None, event_id=None,
                 trace_id=None, attempt=1):
        self.evt_type = evt_type
        self.body = body
        self.source = source
        self.headers = dict(headers or {})
        self.event_id = event_id
        self.trace_id = trace_id
        #: 1 on the first delivery, 2 on the first retry, ...
        self.attempt = attempt
        if trace_id and "trace_id" not in self.headers:
            self.headers["trace_id"] = trace_id

    @property
    def type(self):
        return self.evt_type

    def __getitem__(self, key):
        return self.body[key]

    def __iter__(self):
        return iter(self.body)

    def get(self, key, default=None):
        return self.body.get(key, default)

    def __repr__(self):
        return "<Event type=%r body=%r>" % (self.evt_type, self.body)

    def __str__(self):
        return "{type=%s id=%s}" % (self.evt_type, self.event_id)
