//! Family-owned options: each family defines its options once, in one typed struct (its
//! `options.rs`), and the config file and the command line feed that one parser.
//!
//! A family's [`Options`] type says which keys it reads at each level and which flags feed
//! them:
//! - **scan level**: the `[checks.FAMILY]` table, the same keys under `[scan]` where they were
//!   accepted before families owned them ([`Options::LEGACY_SCAN_KEYS`]), and the family's
//!   command-line flags ([`Options::FLAGS`], which win over the file);
//! - **target level**: keys of a `[[target]]` table ([`Options::TARGET_KEYS`]);
//! - **endpoint level**: keys of a `[[target.endpoint]]` table ([`Options::ENDPOINT_KEYS`]).
//!
//! Raw values are deserialized with serde (`deny_unknown_fields`, [`toml::Spanned`] fields)
//! and validated by the family, which reports a problem as an [`OptionError`]: the span of the
//! offending value and a message. This module turns that into the one line users see: `--flag:
//! message` for a flag, `file:line:column: key: message` for the file. Nothing here knows any
//! family: the family list is handed in.

use std::any::Any;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::endpoint::Role;

/// One command-line flag of a family, feeding one key of its scan-level options.
#[derive(Clone, Copy, Debug)]
pub struct Flag {
    /// The long name, without dashes (`ports` for `--ports`).
    pub long: &'static str,
    /// The option key it sets (`ports`).
    pub key: &'static str,
    /// Value placeholder in `--help` (`LIST`).
    pub value_name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// How its value reads.
    pub kind: FlagKind,
}

/// How a flag's value becomes an option value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlagKind {
    /// A string, as given.
    Text,
    /// A number (a value that does not read as one stays a string, and the family's type
    /// check names the flag).
    Number,
    /// Repeatable: every value given is one string of a list.
    Repeated,
}

/// A problem a family found in one of its values: where the value is, and what is wrong
/// (without the key: the caller names it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionError {
    /// The span of the offending value (in the config text, or a flag's stand-in span).
    pub span: Range<usize>,
    /// What is wrong.
    pub message: String,
}

impl OptionError {
    /// An error about the value at `span`.
    pub fn at(span: Range<usize>, message: impl Into<String>) -> OptionError {
        OptionError {
            span,
            message: message.into(),
        }
    }
}

/// One `[[target.endpoint]]` as a family's options see it: who it is, and its raw keys.
#[derive(Debug)]
pub struct EndpointOptions<E> {
    /// Endpoint name.
    pub name: String,
    /// Endpoint role.
    pub role: Role,
    /// Span of the endpoint's table (for errors about the endpoint as a whole).
    pub span: Range<usize>,
    /// The family's keys of this endpoint.
    pub raw: E,
}

/// A family's options. Implemented once per family, in its own folder.
pub trait Options: Any + Send + Sync + Debug + Clone + Default {
    /// Scan-level keys as written (serde, `deny_unknown_fields`, spanned values).
    type Scan: DeserializeOwned + Default;
    /// Target-level keys as written.
    type Target: DeserializeOwned + Default;
    /// Endpoint-level keys as written.
    type Endpoint: DeserializeOwned + Default + Debug;
    /// Scan-level keys that are also accepted under `[scan]`.
    const LEGACY_SCAN_KEYS: &'static [&'static str] = &[];
    /// Keys the family reads in a `[[target]]` table.
    const TARGET_KEYS: &'static [&'static str] = &[];
    /// Keys the family reads in a `[[target.endpoint]]` table.
    const ENDPOINT_KEYS: &'static [&'static str] = &[];
    /// Command-line flags of the family.
    const FLAGS: &'static [Flag] = &[];

    /// Validate the scan-level options.
    fn scan(raw: Self::Scan) -> Result<Self, OptionError>;

    /// The options for one target: the scan's, overridden or extended by the target's keys
    /// and its endpoints' keys.
    fn target(
        &self,
        raw: Self::Target,
        endpoints: Vec<EndpointOptions<Self::Endpoint>>,
    ) -> Result<Self, OptionError> {
        let _ = (raw, endpoints);
        Ok(self.clone())
    }
}

/// Options of a family that has none.
#[derive(Clone, Debug, Default)]
pub struct NoOptions;

/// The raw form of [`NoOptions`]: no key at all.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoKeys {}

impl Options for NoOptions {
    type Scan = NoKeys;
    type Target = NoKeys;
    type Endpoint = NoKeys;
    fn scan(_: NoKeys) -> Result<NoOptions, OptionError> {
        Ok(NoOptions)
    }
}

/// Parsed options of one family, type-erased.
pub type AnyOptions = Arc<dyn Any + Send + Sync>;

/// Why a family's raw values did not parse.
#[derive(Debug)]
pub enum ParseFailure {
    /// serde: a wrong type, an unknown key.
    Serde(toml::de::Error),
    /// The family's own validation.
    Invalid(OptionError),
}

/// The type-erased face of an [`Options`] type, so that families can be listed.
pub trait OptionsSpec: Send + Sync {
    /// See [`Options::LEGACY_SCAN_KEYS`].
    fn legacy_scan_keys(&self) -> &'static [&'static str];
    /// See [`Options::TARGET_KEYS`].
    fn target_keys(&self) -> &'static [&'static str];
    /// See [`Options::ENDPOINT_KEYS`].
    fn endpoint_keys(&self) -> &'static [&'static str];
    /// See [`Options::FLAGS`].
    fn flags(&self) -> &'static [Flag];
    /// The defaults (no key set anywhere).
    fn defaults(&self) -> AnyOptions;
    /// Deserialize and validate the scan-level table.
    fn parse_scan<'a>(&self, table: Spanned<DeValue<'a>>) -> Result<AnyOptions, ParseFailure>;
    /// Deserialize and validate one target's tables, on top of the scan-level options.
    fn parse_target<'a>(
        &self,
        scan: &AnyOptions,
        table: Spanned<DeValue<'a>>,
        endpoints: Vec<EndpointOptions<Spanned<DeValue<'a>>>>,
    ) -> Result<AnyOptions, ParseFailure>;
}

/// The [`OptionsSpec`] of `T` (a family declares `static OPTIONS: Spec<MyOptions> = Spec::new();`).
pub struct Spec<T>(PhantomData<fn() -> T>);

impl<T> Spec<T> {
    /// The spec of `T`.
    pub const fn new() -> Spec<T> {
        Spec(PhantomData)
    }
}

impl<T> Default for Spec<T> {
    fn default() -> Self {
        Spec::new()
    }
}

fn de<R: DeserializeOwned>(v: Spanned<DeValue<'_>>) -> Result<R, ParseFailure> {
    R::deserialize(ValueDeserializer::from(v)).map_err(ParseFailure::Serde)
}

impl<T: Options> OptionsSpec for Spec<T> {
    fn legacy_scan_keys(&self) -> &'static [&'static str] {
        T::LEGACY_SCAN_KEYS
    }
    fn target_keys(&self) -> &'static [&'static str] {
        T::TARGET_KEYS
    }
    fn endpoint_keys(&self) -> &'static [&'static str] {
        T::ENDPOINT_KEYS
    }
    fn flags(&self) -> &'static [Flag] {
        T::FLAGS
    }
    fn defaults(&self) -> AnyOptions {
        Arc::new(T::default())
    }
    fn parse_scan<'a>(&self, table: Spanned<DeValue<'a>>) -> Result<AnyOptions, ParseFailure> {
        let raw: T::Scan = de(table)?;
        T::scan(raw)
            .map(|o| Arc::new(o) as AnyOptions)
            .map_err(ParseFailure::Invalid)
    }
    fn parse_target<'a>(
        &self,
        scan: &AnyOptions,
        table: Spanned<DeValue<'a>>,
        endpoints: Vec<EndpointOptions<Spanned<DeValue<'a>>>>,
    ) -> Result<AnyOptions, ParseFailure> {
        let base = scan.downcast_ref::<T>().cloned().unwrap_or_default();
        let raw: T::Target = de(table)?;
        let mut eps = Vec::with_capacity(endpoints.len());
        for e in endpoints {
            eps.push(EndpointOptions {
                name: e.name,
                role: e.role,
                span: e.span,
                raw: de::<T::Endpoint>(e.raw)?,
            });
        }
        base.target(raw, eps)
            .map(|o| Arc::new(o) as AnyOptions)
            .map_err(ParseFailure::Invalid)
    }
}

/// A family as the options layer sees it: a name and its options.
pub trait FamilyOptions: Send + Sync {
    /// The family name (`--checks` value, `[checks.NAME]`).
    fn family(&self) -> &'static str;
    /// Its options.
    fn options(&self) -> &'static dyn OptionsSpec;
    /// Whether the family, when it runs, uses the credentials of `endpoint` (its `*_env` and
    /// `*_file` secrets). A scan loads only the secrets of the families that run, so a
    /// config with a login can be swept with `--checks ports` where its password is absent.
    fn reads_secrets_of(&self, _endpoint: &crate::endpoint::Endpoint) -> bool {
        false
    }
}

/// Options of every family for one scope (the scan, or one target), by family name.
#[derive(Clone, Debug, Default)]
pub struct OptionSet(BTreeMap<&'static str, AnyOptions>);

impl OptionSet {
    /// Set the options of `family`.
    pub fn insert(&mut self, family: &'static str, options: AnyOptions) {
        self.0.insert(family, options);
    }

    /// Set typed options of `family` (programmatic plans: the demo, tests).
    pub fn set<T: Options>(&mut self, family: &'static str, options: T) {
        self.0.insert(family, Arc::new(options));
    }

    /// The options of `family`, if set and of type `T`.
    pub fn get<T: Options>(&self, family: &str) -> Option<&T> {
        self.0.get(family).and_then(|o| o.downcast_ref::<T>())
    }

    /// The type-erased options of `family`.
    pub fn get_any(&self, family: &str) -> Option<&AnyOptions> {
        self.0.get(family)
    }
}

/// A value handed to a family, with the key path users know it by.
#[derive(Clone, Debug)]
pub struct Located {
    /// `scan.ports`, `checks.ports.ports`, `target[0].allowed_ports`, or `--ports`.
    pub key: String,
    /// The span of the value (or of the key, for an unknown key).
    pub span: Range<usize>,
    /// Whether this came from a flag (then `key` is the flag).
    pub flag: bool,
}

/// Spans at or above this value stand for command-line flags, not for the config text.
pub const FLAG_SPAN_BASE: usize = usize::MAX / 2;

/// Build a table value from `(key, key span, value)` entries.
pub fn table<'a>(
    entries: Vec<(String, Range<usize>, Spanned<DeValue<'a>>)>,
    span: Range<usize>,
) -> Spanned<DeValue<'a>> {
    let mut t = DeTable::new();
    for (k, kspan, v) in entries {
        t.insert(Spanned::new(kspan, Cow::Owned(k)), v);
    }
    Spanned::new(span, DeValue::Table(t))
}

/// `v` and everything in it moved `by` bytes (a value parsed on its own, put back at its place).
pub fn shift(v: Spanned<DeValue<'_>>, by: usize) -> Spanned<DeValue<'_>> {
    respan(v, &|r: Range<usize>| r.start + by..r.end + by)
}

fn respan<'a>(
    v: Spanned<DeValue<'a>>,
    f: &dyn Fn(Range<usize>) -> Range<usize>,
) -> Spanned<DeValue<'a>> {
    let span = f(v.span());
    let value = match v.into_inner() {
        DeValue::Array(a) => {
            let mut out = toml::de::DeArray::new();
            for item in a {
                out.push(respan(item, f));
            }
            DeValue::Array(out)
        }
        DeValue::Table(t) => {
            let mut out = DeTable::new();
            for (k, item) in t {
                let kspan = f(k.span());
                out.insert(Spanned::new(kspan, k.into_inner()), respan(item, f));
            }
            DeValue::Table(out)
        }
        other => other,
    };
    Spanned::new(span, value)
}

/// The value of one flag as a TOML value (see [`FlagKind`]). Every span is `span` (the
/// flag's stand-in), so an error anywhere in it names the flag.
pub fn flag_value<'a>(
    values: &'a [String],
    kind: FlagKind,
    span: Range<usize>,
) -> Spanned<DeValue<'a>> {
    let scalar = |text: &'a str| -> DeValue<'a> {
        match DeValue::parse(text) {
            Ok(v)
                if kind == FlagKind::Number
                    && (v.get_ref().is_integer() || v.get_ref().is_float()) =>
            {
                v.into_inner()
            }
            _ => DeValue::String(Cow::Borrowed(text)),
        }
    };
    if kind == FlagKind::Repeated {
        let mut arr = toml::de::DeArray::new();
        for v in values {
            arr.push(Spanned::new(
                span.clone(),
                DeValue::String(Cow::Borrowed(v.as_str())),
            ));
        }
        return Spanned::new(span, DeValue::Array(arr));
    }
    let text = values.last().map_or("", String::as_str);
    let s = span.clone();
    respan(Spanned::new(span, scalar(text)), &|_| s.clone())
}

/// The key whose value (or key) span holds `at`: the innermost of `located`.
pub fn locate(located: &[Located], at: usize) -> Option<&Located> {
    located
        .iter()
        .filter(|l| l.span.start <= at && (at < l.span.end || l.span.start == at))
        .min_by_key(|l| l.span.end.saturating_sub(l.span.start))
}

/// Remove serde's type names from a message users read.
pub fn tidy(message: &str) -> String {
    // TOML integers are 64-bit; the parser hands larger ones on as i128, and serde says
    // "invalid type: integer `N` as i128, expected ...".
    if let Some(rest) = message.trim().strip_prefix("invalid type: integer `")
        && let Some((n, tail)) = rest.split_once('`')
        && (tail.starts_with(" as i128") || tail.starts_with(" as u128"))
    {
        return format!("{n} is out of range (at most {})", i64::MAX);
    }
    message
        .trim()
        .replace(
            "data did not match any variant of untagged enum Number",
            "expected a number",
        )
        .replace("expected i64", "expected an integer")
        .replace("expected u32", "expected an integer")
        .replace("expected u16", "expected an integer")
        .replace("expected usize", "expected an integer")
        .replace("expected f64", "expected a number")
}

/// Spanned values that a family's raw struct may declare, with the range checks every family
/// needs, so that each family writes only what is its own.
pub mod value {
    use super::OptionError;
    use toml::Spanned;

    /// A number that may be written as an integer or a float.
    #[derive(Clone, Copy, Debug, serde::Deserialize)]
    #[serde(untagged)]
    pub enum Number {
        /// An integer.
        Int(i64),
        /// A float.
        Float(f64),
    }

    impl Number {
        /// As a float.
        #[allow(clippy::cast_precision_loss, reason = "option values are small")]
        pub fn as_f64(self) -> f64 {
            match self {
                Number::Int(i) => i as f64,
                Number::Float(f) => f,
            }
        }
    }

    /// An integer within `lo..=hi`, with `suffix` after the range message (e.g. a ceiling note).
    pub fn int(v: &Spanned<i64>, lo: i64, hi: i64, suffix: &str) -> Result<i64, OptionError> {
        let n = *v.get_ref();
        if (lo..=hi).contains(&n) {
            Ok(n)
        } else {
            Err(OptionError::at(
                v.span(),
                format!("must be between {lo} and {hi}, got {n}{suffix}"),
            ))
        }
    }

    /// An integer within `lo..=hi`, as any integer type.
    pub fn int_as<T: TryFrom<i64>>(
        v: &Spanned<i64>,
        lo: i64,
        hi: i64,
        suffix: &str,
    ) -> Result<T, OptionError> {
        let n = int(v, lo, hi, suffix)?;
        T::try_from(n).map_err(|_| OptionError::at(v.span(), format!("{n} is out of range")))
    }
}
