//! The store's rows, inputs and reports on the wire (feature `serde`).
//!
//! Every field read runs the check the store runs on write ([`check_name`], [`check_text`],
//! [`check_coord`], the version and id ranges), so a value that deserializes is one the
//! store's field checks accept; and every refusal names the field, either in the check's
//! own message (`invalid lan name: 300 bytes, longer than 255`) or in what serde says it
//! expected (`invalid type: integer `5`, expected lan name: a string`). Refusals never echo
//! a rejected string, however long.

use std::fmt;
use std::marker::PhantomData;
use std::string::String;
use std::vec::Vec;

use serde::de::{Deserializer, Error, IntoDeserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::{
    ChildEdit, DeckyId, DeckyPatch, DeckyState, EdgeId, LanId, LanPatch, NewDecky, NewEdge, NewLan,
    Referable, RowRef, Timestamp, Touched,
};
use crate::store::{check_coord, check_name, check_text};

/// A field's label, as the store's checks and errors name it.
pub(crate) trait Field {
    /// E.g. `"lan name"`.
    const NAME: &'static str;
}

/// Declares one marker per field: its label and its [`Read`] (the visitor and check).
macro_rules! fields {
    ($( $reader:ident { $( $T:ident = $name:literal, )+ } )+) => {$($(
        #[doc = concat!("The `", $name, "` field.")]
        pub(crate) enum $T {}

        impl Field for $T {
            const NAME: &'static str = $name;
        }

        impl Read for $T {
            const NAME: &'static str = $name;
            type Value = <$reader<$T> as Read>::Value;

            fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self::Value, D::Error> {
                <$reader<$T> as Read>::read(d)
            }
        }
    )+)+};
}

fields! {
    NameOf {
        TopologyName = "topology name",
        LanName = "lan name",
        DeckyName = "decky name",
    }
    TextOf {
        Subnet = "subnet",
        Reason = "reason",
        NetworkId = "network id",
        DeckyService = "decky service",
        DeckyConfig = "decky config",
        DeckyIp = "decky ip",
        DeckyLastError = "decky last error",
        Payload = "payload",
        Holder = "holder",
    }
    Coord {
        LanX = "lan x",
        LanY = "lan y",
        DeckyX = "decky x",
        DeckyY = "decky y",
    }
    Flag {
        IsDmz = "is_dmz",
        NeedsResync = "needs_resync",
        IsBridge = "is_bridge",
        ForwardsL3 = "forwards_l3",
    }
}

/// A name field ([`check_name`]).
pub(crate) type NameOf<F> = Str<F, Name>;
/// A free-text field ([`check_text`]).
pub(crate) type TextOf<F> = Str<F, Text>;

/// What a string field holds: a name or free text, each with its store check.
pub(crate) trait Kind {
    /// The store's check of the value.
    fn check(field: &'static str, value: &str) -> Result<(), crate::store::StoreError>;
}

/// A name ([`check_name`]).
pub(crate) enum Name {}

impl Kind for Name {
    fn check(field: &'static str, value: &str) -> Result<(), crate::store::StoreError> {
        check_name(field, value)
    }
}

/// Free text ([`check_text`]).
pub(crate) enum Text {}

impl Kind for Text {
    fn check(field: &'static str, value: &str) -> Result<(), crate::store::StoreError> {
        check_text(field, value)
    }
}

// ---- readers ------------------------------------------------------------------------------

/// Reads one field's value from any deserializer, checked.
pub(crate) trait Read {
    /// The field's label.
    const NAME: &'static str;
    /// What it reads.
    type Value;
    /// Reads and checks one value.
    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Self::Value, D::Error>;
}

/// A string field of kind `K` ([`Name`] or [`Text`]).
pub(crate) struct Str<F, K>(PhantomData<(F, K)>);

impl<F: Field, K: Kind> Read for Str<F, K> {
    const NAME: &'static str = F::NAME;
    type Value = String;

    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        d.deserialize_string(Str::<F, K>(PhantomData))
    }
}

impl<F: Field, K: Kind> Visitor<'_> for Str<F, K> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: a string", F::NAME)
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<String, E> {
        K::check(F::NAME, v).map_err(E::custom)?;
        Ok(String::from(v))
    }

    fn visit_string<E: Error>(self, v: String) -> Result<String, E> {
        K::check(F::NAME, &v).map_err(E::custom)?;
        Ok(v)
    }
}

/// A canvas coordinate ([`check_coord`]: finite).
pub(crate) struct Coord<F>(PhantomData<F>);

impl<F: Field> Read for Coord<F> {
    const NAME: &'static str = F::NAME;
    type Value = f64;

    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_f64(Coord::<F>(PhantomData))
    }
}

impl<F: Field> Visitor<'_> for Coord<F> {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: a finite number", F::NAME)
    }

    fn visit_f64<E: Error>(self, v: f64) -> Result<f64, E> {
        check_coord(F::NAME, Some(v)).map_err(E::custom)?;
        Ok(v)
    }

    #[allow(clippy::cast_precision_loss)] // As JSON readers do: the nearest f64.
    fn visit_u64<E: Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    #[allow(clippy::cast_precision_loss)]
    fn visit_i64<E: Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_str<E: Error>(self, _: &str) -> Result<f64, E> {
        // Not `Unexpected::Str`: that would echo the whole string, however long.
        Err(E::invalid_type(Unexpected::Other("a string"), &self))
    }
}

/// A boolean flag.
pub(crate) struct Flag<F>(PhantomData<F>);

impl<F: Field> Read for Flag<F> {
    const NAME: &'static str = F::NAME;
    type Value = bool;

    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        d.deserialize_bool(Flag::<F>(PhantomData))
    }
}

impl<F: Field> Visitor<'_> for Flag<F> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: true or false", F::NAME)
    }

    fn visit_bool<E: Error>(self, v: bool) -> Result<bool, E> {
        Ok(v)
    }

    fn visit_str<E: Error>(self, _: &str) -> Result<bool, E> {
        Err(E::invalid_type(Unexpected::Other("a string"), &self))
    }
}

/// A decky's service list: an array of texts, each checked.
pub(crate) struct Services;

impl Read for Services {
    const NAME: &'static str = "decky services";
    type Value = Vec<String>;

    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        d.deserialize_seq(Services)
    }
}

impl<'de> Visitor<'de> for Services {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("decky services: an array of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        // No preallocation from the size hint: it comes from the input.
        let mut out = Vec::new();
        while let Some(s) = seq.next_element_seed(Seed::<DeckyService>(PhantomData))? {
            out.push(s);
        }
        Ok(out)
    }

    fn visit_str<E: Error>(self, _: &str) -> Result<Vec<String>, E> {
        Err(E::invalid_type(Unexpected::Other("a string"), &self))
    }
}

/// A decky's runtime state (refused by name if unknown).
pub(crate) enum DeckyStateField {}

impl Read for DeckyStateField {
    const NAME: &'static str = "decky state";
    type Value = DeckyState;

    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<DeckyState, D::Error> {
        DeckyState::deserialize(d)
    }
}

/// A timestamp.
pub(crate) enum At {}

impl Read for At {
    const NAME: &'static str = "timestamp";
    type Value = Timestamp;

    fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        Timestamp::deserialize(d)
    }
}

/// A [`Read`] as a seed, for sequences and `Option`s.
struct Seed<R>(PhantomData<R>);

impl<'de, R: Read> serde::de::DeserializeSeed<'de> for Seed<R> {
    type Value = R::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<R::Value, D::Error> {
        R::read(d)
    }
}

// ---- presence and null ----------------------------------------------------------------------

/// A required field (`deserialize_with = "wire::req::<R, _>"`).
pub(crate) fn req<'de, R: Read, D: Deserializer<'de>>(d: D) -> Result<R::Value, D::Error> {
    R::read(d)
}

/// An optional field: `null` is `None` (and, with `default`, so is absence).
pub(crate) fn opt<'de, R: Read, D: Deserializer<'de>>(d: D) -> Result<Option<R::Value>, D::Error> {
    d.deserialize_option(Nullable::<R>(PhantomData, true))
}

/// A patch of a field that cannot be cleared: a value sets it, `null` is refused (with
/// `default`, absence keeps it).
pub(crate) fn set<'de, R: Read, D: Deserializer<'de>>(d: D) -> Result<Option<R::Value>, D::Error> {
    d.deserialize_option(Nullable::<R>(PhantomData, false))
}

/// A patch of a clearable field: a value sets it (`Some(Some(v))`), `null` clears it
/// (`Some(None)`); with `default`, absence keeps it (`None`).
pub(crate) fn patch<'de, R: Read, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<R::Value>>, D::Error> {
    opt::<R, D>(d).map(Some)
}

/// `null` as `None` (`.1`) or refused.
struct Nullable<R>(PhantomData<R>, bool);

impl<'de, R: Read> Visitor<'de> for Nullable<R> {
    type Value = Option<R::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.1 {
            write!(f, "{}: a value or null", R::NAME)
        } else {
            write!(
                f,
                "{}: a value (null cannot clear it; omit the field to keep it)",
                R::NAME
            )
        }
    }

    fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
        if self.1 {
            Ok(None)
        } else {
            Err(E::invalid_type(Unexpected::Option, &self))
        }
    }

    fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
        self.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        R::read(d).map(Some)
    }
}

/// Skips `None` when serializing a patch field (absent = unchanged).
#[allow(clippy::ref_option)] // serde's `skip_serializing_if` passes a reference.
pub(crate) fn is_absent<T>(v: &Option<T>) -> bool {
    v.is_none()
}

// ---- timestamps -----------------------------------------------------------------------------

/// 0000-01-01T00:00:00Z, the first instant RFC 3339 can write.
const MIN_MICROS: i64 = -62_167_219_200_000_000;
/// 9999-12-31T23:59:59.999999Z, the last.
const MAX_MICROS: i64 = 253_402_300_799_999_999;
/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
const RFC3339_LEN: usize = 27;

/// The fixed-width RFC 3339 form of a timestamp in UTC with six fractional digits, or
/// `None` outside the years 0000 to 9999.
fn format_rfc3339(micros: i64) -> Option<[u8; RFC3339_LEN]> {
    if !(MIN_MICROS..=MAX_MICROS).contains(&micros) {
        return None;
    }
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).ok()?;
    let mut out = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |start: usize, width: usize, mut value: u32| {
        for i in (start..start + width).rev() {
            // Invariant: value < 10^width, so every digit fits.
            out[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, at.year().unsigned_abs());
    put(5, 2, u32::from(u8::from(at.month())));
    put(8, 2, u32::from(at.day()));
    put(11, 2, u32::from(at.hour()));
    put(14, 2, u32::from(at.minute()));
    put(17, 2, u32::from(at.second()));
    put(20, 6, at.microsecond());
    Some(out)
}

/// Parses any RFC 3339 timestamp (any offset, 1 to 9 fractional digits) to microseconds
/// since the epoch; refuses precision finer than a microsecond, which no store keeps.
fn parse_rfc3339(s: &str) -> Result<i64, String> {
    // The longest valid form: 29 characters of date, time and 9 fractional digits, plus
    // an offset; anything longer is refused without parsing it.
    if s.len() > 40 {
        return Err(std::format!(
            "{} bytes, longer than any RFC 3339 timestamp",
            s.len()
        ));
    }
    let at = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| e.to_string())?;
    let nanos = at.unix_timestamp_nanos();
    if nanos % 1000 != 0 {
        return Err(String::from(
            "finer than a microsecond, which no store keeps",
        ));
    }
    i64::try_from(nanos / 1000).map_err(|_| String::from("out of range"))
}

/// `"2023-11-14T22:13:20.000000Z"`: RFC 3339 in UTC, always six fractional digits.
impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match format_rfc3339(self.0) {
            Some(bytes) => match std::str::from_utf8(&bytes) {
                Ok(text) => serializer.serialize_str(text),
                Err(e) => Err(serde::ser::Error::custom(e)),
            },
            None => Err(serde::ser::Error::custom(std::format!(
                "timestamp {} µs since the epoch is outside RFC 3339's years 0000 to 9999",
                self.0
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TimestampVisitor)
    }
}

struct TimestampVisitor;

impl Visitor<'_> for TimestampVisitor {
    type Value = Timestamp;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a timestamp: an RFC 3339 string")
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<Timestamp, E> {
        parse_rfc3339(v)
            .map(Timestamp)
            .map_err(|problem| E::custom(std::format_args!("invalid timestamp: {problem}")))
    }
}

// ---- row references -----------------------------------------------------------------------------

/// `5` for a stored id; `{"batch":0}` for a batch-local reference.
impl<I: Serialize> Serialize for RowRef<I> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Stored(id) => id.serialize(serializer),
            Self::Batch(i) => BatchRef { batch: *i }.serialize(serializer),
        }
    }
}

/// A batch-local reference as written.
#[derive(Serialize)]
struct BatchRef {
    batch: usize,
}

/// A number is a stored id (checked as the id's own type checks it); an object with the one
/// key `batch` is a batch-local reference. Needs a self-describing format, as JSON is.
impl<'de, I: Referable + Deserialize<'de>> Deserialize<'de> for RowRef<I> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RowRefVisitor(PhantomData))
    }
}

struct RowRefVisitor<I>(PhantomData<I>);

impl<I: Referable> RowRefVisitor<I> {
    fn id<'de, E: Error>(v: u64) -> Result<RowRef<I>, E>
    where
        I: Deserialize<'de>,
    {
        I::deserialize(v.into_deserializer()).map(RowRef::Stored)
    }
}

impl<'de, I: Referable + Deserialize<'de>> Visitor<'de> for RowRefVisitor<I> {
    type Value = RowRef<I>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (an integer from 1 to 18446744073709551615) or {{\"batch\": i}}, i the index of an earlier edit of the batch",
            I::LABEL
        )
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<Self::Value, E> {
        Self::id(v)
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<Self::Value, E> {
        match u64::try_from(v) {
            Ok(v) => Self::id(v),
            Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
        }
    }

    fn visit_str<E: Error>(self, _: &str) -> Result<Self::Value, E> {
        // Not `Unexpected::Str`: that would echo the whole string, however long.
        Err(E::invalid_type(Unexpected::Other("a string"), &self))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut batch = None;
        while let Some(key) = map.next_key::<RefKey>()? {
            match key {
                RefKey::Batch if batch.is_some() => return Err(A::Error::duplicate_field("batch")),
                RefKey::Batch => batch = Some(map.next_value_seed(EditIndex)?),
            }
        }
        batch
            .map(RowRef::Batch)
            .ok_or_else(|| A::Error::missing_field("batch"))
    }
}

/// The index of an edit in its batch: an integer from 0.
struct EditIndex;

impl<'de> serde::de::DeserializeSeed<'de> for EditIndex {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        // `any`, not `u64`: inside an edit the value is buffered, and a buffered string
        // refused as a `u64` would be echoed whole in the error.
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for EditIndex {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the index of an edit of the batch: an integer from 0")
    }

    fn visit_u64<E: Error>(self, v: u64) -> Result<usize, E> {
        usize::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_i64<E: Error>(self, v: i64) -> Result<usize, E> {
        usize::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
    }

    fn visit_str<E: Error>(self, _: &str) -> Result<usize, E> {
        Err(E::invalid_type(Unexpected::Other("a string"), &self))
    }
}

/// The one key of a batch-local reference; any other is refused by name.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum RefKey {
    Batch,
}

// ---- enums with data --------------------------------------------------------------------------

/// [`ChildEdit`] as written: `op` names the variant, the other keys are its arguments.
#[derive(Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum EditOut<'a> {
    AddLan {
        lan: &'a NewLan,
    },
    UpdateLan {
        id: RowRef<LanId>,
        patch: &'a LanPatch,
    },
    DeleteLan {
        id: RowRef<LanId>,
    },
    AddDecky {
        decky: &'a NewDecky,
    },
    UpdateDecky {
        id: RowRef<DeckyId>,
        patch: &'a DeckyPatch,
    },
    DeleteDecky {
        id: RowRef<DeckyId>,
    },
    AddEdge {
        edge: &'a NewEdge,
    },
    DeleteEdge {
        id: EdgeId,
    },
}

/// [`ChildEdit`] as read; the same shape as [`EditOut`].
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum EditIn {
    AddLan {
        lan: NewLan,
    },
    UpdateLan {
        id: RowRef<LanId>,
        patch: LanPatch,
    },
    DeleteLan {
        id: RowRef<LanId>,
    },
    AddDecky {
        decky: NewDecky,
    },
    UpdateDecky {
        id: RowRef<DeckyId>,
        patch: DeckyPatch,
    },
    DeleteDecky {
        id: RowRef<DeckyId>,
    },
    AddEdge {
        edge: NewEdge,
    },
    DeleteEdge {
        id: EdgeId,
    },
}

impl Serialize for ChildEdit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::AddLan(lan) => EditOut::AddLan { lan },
            Self::UpdateLan(id, patch) => EditOut::UpdateLan { id: *id, patch },
            Self::DeleteLan(id) => EditOut::DeleteLan { id: *id },
            Self::AddDecky(decky) => EditOut::AddDecky { decky },
            Self::UpdateDecky(id, patch) => EditOut::UpdateDecky { id: *id, patch },
            Self::DeleteDecky(id) => EditOut::DeleteDecky { id: *id },
            Self::AddEdge(edge) => EditOut::AddEdge { edge },
            Self::DeleteEdge(id) => EditOut::DeleteEdge { id: *id },
        }
        .serialize(serializer)
    }
}

impl From<EditIn> for ChildEdit {
    fn from(edit: EditIn) -> Self {
        match edit {
            EditIn::AddLan { lan } => Self::AddLan(lan),
            EditIn::UpdateLan { id, patch } => Self::UpdateLan(id, patch),
            EditIn::DeleteLan { id } => Self::DeleteLan(id),
            EditIn::AddDecky { decky } => Self::AddDecky(decky),
            EditIn::UpdateDecky { id, patch } => Self::UpdateDecky(id, patch),
            EditIn::DeleteDecky { id } => Self::DeleteDecky(id),
            EditIn::AddEdge { edge } => Self::AddEdge(edge),
            EditIn::DeleteEdge { id } => Self::DeleteEdge(id),
        }
    }
}

/// [`Touched`] on the wire: `kind` names the table, `id` the row.
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum TouchedWire {
    Lan { id: LanId },
    Decky { id: DeckyId },
    Edge { id: EdgeId },
}

impl From<TouchedWire> for Touched {
    fn from(t: TouchedWire) -> Self {
        match t {
            TouchedWire::Lan { id } => Self::Lan(id),
            TouchedWire::Decky { id } => Self::Decky(id),
            TouchedWire::Edge { id } => Self::Edge(id),
        }
    }
}

impl From<Touched> for TouchedWire {
    fn from(t: Touched) -> Self {
        match t {
            Touched::Lan(id) => Self::Lan { id },
            Touched::Decky(id) => Self::Decky { id },
            Touched::Edge(id) => Self::Edge { id },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_bounds() {
        let first = format_rfc3339(MIN_MICROS).map(|b| String::from_utf8_lossy(&b).into_owned());
        assert_eq!(first.as_deref(), Some("0000-01-01T00:00:00.000000Z"));
        let last = format_rfc3339(MAX_MICROS).map(|b| String::from_utf8_lossy(&b).into_owned());
        assert_eq!(last.as_deref(), Some("9999-12-31T23:59:59.999999Z"));
        assert_eq!(format_rfc3339(MIN_MICROS - 1), None);
        assert_eq!(format_rfc3339(MAX_MICROS + 1), None);
        assert_eq!(parse_rfc3339("0000-01-01T00:00:00Z"), Ok(MIN_MICROS));
        assert_eq!(parse_rfc3339("9999-12-31T23:59:59.999999Z"), Ok(MAX_MICROS));
    }

    #[test]
    fn rfc3339_epoch_and_negative() {
        let text = |m| format_rfc3339(m).map(|b| String::from_utf8_lossy(&b).into_owned());
        assert_eq!(text(0).as_deref(), Some("1970-01-01T00:00:00.000000Z"));
        assert_eq!(text(-1).as_deref(), Some("1969-12-31T23:59:59.999999Z"));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59.999999Z"), Ok(-1));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Ok(0));
        assert!(parse_rfc3339("1970-01-01T00:00:00.0000001Z").is_err());
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.000001000Z"), Ok(1));
        assert!(parse_rfc3339("1970-01-01T00:00:00").is_err());
        assert!(parse_rfc3339("1970-02-30T00:00:00Z").is_err());
    }
}
