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
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        rmp_serde::from_slice(&self.body).map_err(|e| {
            Error::internal(format!(
                "cannot decode the body of event {}: {e}",
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
        serde_json::from_value(value).map_err(|e| {
            Error::internal(format!(
                "field `{field}` of event {} has the wrong type: {e}",
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
        assert!(greeted().get::<u32>("name").is_err());
    }

    #[test]
    fn decode_reads_the_whole_body() {
        #[derive(serde::Deserialize)]
        struct Greeted {
            name: String,
        }
        assert_eq!(greeted().decode::<Greeted>().expect("ok").name, "Joe");
    }
}
