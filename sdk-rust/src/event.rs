//! An event as a handler receives it, with helpers to decode its MessagePack body.

use serde::de::DeserializeOwned;

use crate::error::Error;

/// One delivery of an event to a subscription.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    pub event_type: String,
    /// The body as emitted: MessagePack bytes.
    pub body: bytes::Bytes,
    pub trace_id: String,
    /// 1 on the first delivery, 2 on the first retry, ...
    pub attempt: u32,
    /// Unique per emitted event (the same on every retry).
    pub event_id: String,
    /// The subscribing handler's name, when the daemon says it (empty otherwise).
    pub handler: String,
}

impl Event {
    /// Decodes the whole body, e.g. into a struct with the event's fields.
    /// A field of the wrong type is named: `cannot decode the body of event
    /// placed: field `qty`: invalid type: string "2", expected u32`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        crate::codec::decode_msgpack(&self.body).map_err(|(reason, path)| {
            let field = if path.is_empty() {
                String::new()
            } else {
                format!("field `{path}`: ")
            };
            Error::internal(format!(
                "cannot decode the body of event {}: {field}{reason}",
                self.event_type
            ))
        })
    }

    /// One field of a map body, like lymph's `event['name']`.
    pub fn get<T: DeserializeOwned>(&self, field: &str) -> Result<T, Error> {
        let mut map: serde_json::Map<String, serde_json::Value> = self.decode()?;
        let value = map.remove(field).ok_or_else(|| {
            Error::internal(format!("event {} has no field `{field}`", self.event_type))
        })?;
        crate::codec::decode_value(value).map_err(|(reason, path)| {
            Error::internal(format!(
                "field `{}` of event {} has the wrong type: {reason}",
                path.under(field),
                self.event_type
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn greeted() -> Event {
        Event {
            event_type: "greeted".into(),
            body: rmp_serde::to_vec_named(&serde_json::json!({"name": "Joe"}))
                .expect("encodes")
                .into(),
            ..Event::default()
        }
    }

    #[test]
    fn get_reads_one_field() {
        assert_eq!(greeted().get::<String>("name").expect("ok"), "Joe");
        let missing = greeted().get::<String>("age").expect_err("no such field");
        assert_eq!(missing.message(), "event greeted has no field `age`");
        let wrong = greeted().get::<u32>("name").expect_err("not a number");
        assert_eq!(
            wrong.message(),
            "field `name` of event greeted has the wrong type: invalid type: string \"Joe\", expected u32"
        );
    }

    #[test]
    fn decode_reads_the_whole_body() {
        #[derive(serde::Deserialize)]
        struct Greeted {
            name: String,
        }
        assert_eq!(greeted().decode::<Greeted>().expect("ok").name, "Joe");
        #[derive(Debug, serde::Deserialize)]
        struct Counted {
            #[allow(dead_code)]
            name: u32,
        }
        let wrong = greeted().decode::<Counted>().expect_err("not a number");
        assert_eq!(
            wrong.message(),
            "cannot decode the body of event greeted: field `name`: invalid type: string \"Joe\", expected u32"
        );
    }
}
