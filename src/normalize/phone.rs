//! libphonenumber's answer for `+` and digits, from every country's patterns compiled once.
//!
//! [`super::phone_e164`] hands the digits after the `+` to [`e164`]. The answer is exactly that
//! of `phonenumber::parse(None, "+digits")`, then `is_valid`, then the E.164 format (kept as
//! [`super::validate_with_phonenumber`], the oracle of the differential tests and of the fuzz
//! target `phone_differential`), without the parser's generic machinery (RFC 3966 and
//! natural-text grammars, extension patterns, letter mappings): the input is digits only, so
//! none of that can apply. What remains is the port's own sequence, step for step:
//!
//! 1. the country code: the shortest prefix of one to three digits the metadata knows (a
//!    leading `0` is no code);
//! 2. the region (`source_for`): the code's only region, or among several the first whose
//!    leading-digits pattern matches, or without one whose patterns call the number valid;
//! 3. the national prefix for parsing (with its transform rule, as the port applies it), then
//!    the national prefix once more, kept unless the result is too short for the region;
//! 4. the region again, for the number now, and its validity: the general pattern and any of
//!    the ten number types libphonenumber tries (premium rate to mobile).
//!
//! Costs: the port compiles a pattern on its first use and keeps 100 in an LRU, so a number from
//! a region the process has not seen recently answers milliseconds later than one it has, which
//! tells an observer which regions were seen. Here every pattern of every region is compiled
//! when the tables are first used, as a fully built DFA (no lazily built states, no cache that
//! grows with use); the dozen national-prefix patterns with a transform rule also get a regex
//! without the lazy DFA, searched with a fresh cache. A check costs what its digits cost,
//! whatever numbers came before.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex_automata::dfa::{Automaton, StartKind, dense};
use regex_automata::util::syntax;
use regex_automata::util::{primitives::StateID, start};
use regex_automata::{Anchored, Input, meta};

/// The compiled metadata; `None` if some pattern did not compile, in which case
/// [`super::phone_e164`] uses the `phonenumber` crate itself.
static TABLES: LazyLock<Option<Tables>> = LazyLock::new(Tables::build);

/// The compiled metadata, built on first use (about 1.2 billion instructions, 15 MB: see
/// docs/benchmarks.md).
pub(super) fn tables() -> Option<&'static Tables> {
    TABLES.as_ref()
}

/// Every country calling code's regions and every region's patterns.
pub(super) struct Tables {
    /// Indexed by country calling code (below 1000).
    codes: Vec<Option<Code>>,
    countries: Vec<Region>,
}

/// A country calling code: how the port finds the region of a number (`source_for`).
enum Code {
    /// One region; `None` when the port finds no metadata for it.
    Single(Option<usize>),
    /// Several, in the port's order (main region first): the region whose patterns are tried,
    /// and the region the port then looks up by the first one's id.
    Several(Vec<(usize, Option<usize>)>),
}

/// One region's metadata, with its patterns compiled.
struct Region {
    general: Desc,
    /// The general descriptor's `possible_local_length`.
    local_lengths: Vec<u16>,
    /// Mobile, fixed line, premium rate, toll free, shared cost, VoIP, personal number, pager,
    /// UAN, voicemail: the types the port's `number_type` tries (those the region has; it
    /// tries them in another order, which does not change whether any matches).
    kinds: Vec<Desc>,
    national_prefix: Option<String>,
    national_prefix_for_parsing: Option<Parsing>,
    national_prefix_transform_rule: Option<String>,
    leading_digits: Option<Prefix>,
}

/// A region's national prefix for parsing: its match's end, and with a transform rule its
/// groups too.
struct Parsing {
    pattern: Prefix,
    /// Only when the region has a transform rule, which needs the groups.
    groups: Option<meta::Regex>,
}

/// A number descriptor: its possible lengths and its national number pattern.
struct Desc {
    lengths: Vec<u16>,
    pattern: Prefix,
}

/// A pattern as the port tests it, `find(value)` starting at 0: does a prefix of the value
/// match? A match starting at 0 is the leftmost one when there is one, so this is an anchored
/// search.
enum Prefix {
    /// The DFA and its anchored start state.
    Dfa(Box<dense::DFA<Vec<u32>>>, StateID),
    /// For a pattern whose DFA would exceed the size limit (none in the crate's metadata; see
    /// the test `every_pattern_compiles_to_a_dfa`): no lazily built states either.
    Meta(meta::Regex),
}

/// The syntax the port compiles its patterns with: `regex`'s defaults plus `x`
/// (`ignore_whitespace`).
fn syntax_config() -> syntax::Config {
    syntax::Config::new().ignore_whitespace(true)
}

/// A pattern's engine without the lazy DFA: its search states are all built here. Searched with
/// a cache made for the call (not the regex's pool, whose caches grow with what they have
/// seen), so a search costs what its input costs, never less because a similar input came
/// before.
fn meta_regex(pattern: &str) -> Option<meta::Regex> {
    meta::Regex::builder()
        .syntax(syntax_config())
        .configure(meta::Config::new().hybrid(false))
        .build(pattern)
        .ok()
}

/// Largest DFA built for one pattern; a bigger one falls back to [`meta_regex`].
const DFA_SIZE_LIMIT: usize = 4 << 20;

impl Prefix {
    fn new(pattern: &str) -> Option<Self> {
        // The values tested are ASCII digits, on which ASCII classes (`\d` as `[0-9]`) and
        // Unicode ones agree: ASCII keeps the DFA small (no UTF-8 sequences).
        let dfa = dense::Builder::new()
            .syntax(syntax_config().unicode(false))
            .configure(
                dense::Config::new()
                    .start_kind(StartKind::Anchored)
                    .dfa_size_limit(Some(DFA_SIZE_LIMIT))
                    .determinize_size_limit(Some(DFA_SIZE_LIMIT)),
            )
            .build(pattern);
        // The patterns have no look-around: one anchored start state serves every search.
        let start = dfa.as_ref().ok().and_then(|d| {
            d.start_state(&start::Config::new().anchored(Anchored::Yes))
                .ok()
        });
        match (dfa, start) {
            (Ok(dfa), Some(start)) => Some(Self::Dfa(Box::new(dfa), start)),
            _ => meta_regex(pattern).map(Self::Meta),
        }
    }

    fn matches_start_of(&self, value: &str) -> bool {
        self.search(value, true).is_some()
    }

    /// The end of the match starting at 0 that `Regex::find` reports (leftmost first).
    fn match_end(&self, value: &str) -> Option<usize> {
        self.search(value, false)
    }

    /// An anchored search: the end of the leftmost-first match, or with `earliest` of the
    /// first match seen.
    fn search(&self, value: &str, earliest: bool) -> Option<usize> {
        let (dfa, start) = match self {
            Self::Dfa(dfa, start) => (dfa, *start),
            Self::Meta(re) => {
                let input = Input::new(value).anchored(Anchored::Yes).earliest(earliest);
                return re
                    .search_with(&mut re.create_cache(), &input)
                    .map(|m| m.end());
            }
        };
        // The DFA's own search loop without its set-up: a match state is entered one byte
        // after the match ends, a dead state ends the search, and there are no quit bytes (no
        // Unicode word boundary in the patterns).
        let mut state = start;
        let mut end = None;
        for (at, &byte) in value.as_bytes().iter().enumerate() {
            state = dfa.next_state(state, byte);
            if dfa.is_special_state(state) {
                if dfa.is_match_state(state) {
                    end = Some(at);
                    if earliest {
                        return end;
                    }
                } else if dfa.is_dead_state(state) || dfa.is_quit_state(state) {
                    return end;
                }
            }
        }
        if dfa.is_match_state(dfa.next_eoi_state(state)) {
            end = Some(value.len());
        }
        end
    }
}

impl Desc {
    fn new(desc: &Descriptor) -> Option<Self> {
        Some(Self {
            lengths: desc.possible_length().to_vec(),
            pattern: Prefix::new(desc.national_number().as_str())?,
        })
    }

    /// The port's `Descriptor::is_match`.
    fn is_match(&self, value: &str) -> bool {
        let length = u16::try_from(value.len()).unwrap_or(u16::MAX);
        if !self.lengths.is_empty() && !self.lengths.contains(&length) {
            return false;
        }
        self.pattern.matches_start_of(value)
    }
}

impl Region {
    fn new(meta: &Metadata) -> Option<Self> {
        let d = meta.descriptors();
        // Validity is "any type matches", whatever the order, so the two types nearly every
        // number an OTP goes to has come first: a fixed-line or mobile number then walks one or
        // two patterns instead of up to ten (each its own DFA, often cold in the cache).
        let kinds = [
            d.mobile(),
            d.fixed_line(),
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ]
        .into_iter()
        .flatten()
        .map(Desc::new)
        .collect::<Option<Vec<_>>>()?;
        Some(Self {
            general: Desc::new(d.general())?,
            local_lengths: d.general().possible_local_length().to_vec(),
            kinds,
            national_prefix: meta.national_prefix().map(str::to_owned),
            national_prefix_for_parsing: match meta.national_prefix_for_parsing() {
                Some(re) => Some(Parsing {
                    pattern: Prefix::new(re.as_str())?,
                    groups: match meta.national_prefix_transform_rule() {
                        Some(_) => Some(meta_regex(re.as_str())?),
                        None => None,
                    },
                }),
                None => None,
            },
            national_prefix_transform_rule: meta
                .national_prefix_transform_rule()
                .map(str::to_owned),
            leading_digits: match meta.leading_digits() {
                Some(re) => Some(Prefix::new(re.as_str())?),
                None => None,
            },
        })
    }

    /// The port's `number_type(meta, value) != Type::Unknown`.
    fn is_valid_number(&self, value: &str) -> bool {
        self.general.is_match(value) && self.kinds.iter().any(|k| k.is_match(value))
    }

    /// The port's `length(meta, number, Type::Unknown) == Validation::TooShort`.
    fn is_too_short(&self, length: usize) -> bool {
        let length = u16::try_from(length).unwrap_or(u16::MAX);
        let Some(&first) = self.general.lengths.first() else {
            return false;
        };
        !self.local_lengths.contains(&length) && length != first && length < first
    }

    /// The port's `helper::national_number`: the national prefix for parsing removed (or
    /// replaced by the transform rule), or the national prefix when there is no such pattern.
    fn strip_national_prefix<'a>(&self, national: &'a str) -> Cow<'a, str> {
        let Some(parsing) = &self.national_prefix_for_parsing else {
            if let Some(prefix) = &self.national_prefix
                && let Some(rest) = national.strip_prefix(prefix.as_str())
            {
                return Cow::Borrowed(rest);
            }
            return Cow::Borrowed(national);
        };
        let (Some(rule), Some(groups)) = (&self.national_prefix_transform_rule, &parsing.groups)
        else {
            // No transform rule: the match is removed.
            return match parsing.pattern.match_end(national) {
                Some(end) => Cow::Borrowed(&national[end..]),
                None => Cow::Borrowed(national),
            };
        };
        let mut caps = groups.create_captures();
        groups.search_captures_with(
            &mut groups.create_cache(),
            &Input::new(national).anchored(Anchored::Yes),
            &mut caps,
        );
        let Some(found) = caps.get_match() else {
            return Cow::Borrowed(national);
        };
        let end = found.end();
        // The port applies the rule only when the last group took part in the match.
        match caps.get_group(caps.group_len().saturating_sub(1)) {
            Some(_) => {
                // `Regex::replace` of the first match, which starts at 0.
                let mut transformed = String::with_capacity(national.len() + rule.len());
                caps.interpolate_string_into(national, rule, &mut transformed);
                transformed.push_str(&national[end..]);
                if self.general.is_match(national) && !self.general.is_match(&transformed) {
                    return Cow::Borrowed(national);
                }
                Cow::Owned(transformed)
            }
            _ => Cow::Borrowed(&national[end..]),
        }
    }
}

impl Tables {
    fn build() -> Option<Self> {
        let db = &*DATABASE;
        let mut index: HashMap<*const Metadata, usize> = HashMap::new();
        let mut countries = Vec::new();
        let mut region_of = |meta: &Metadata| -> Option<usize> {
            let key: *const Metadata = meta;
            if let Some(&i) = index.get(&key) {
                return Some(i);
            }
            countries.push(Region::new(meta)?);
            index.insert(key, countries.len() - 1);
            Some(countries.len() - 1)
        };
        let mut codes = Vec::with_capacity(1000);
        for code in 0..1000u16 {
            let Some(metas) = db.by_code(&code) else {
                codes.push(None);
                continue;
            };
            let regions = db.region(&code).unwrap_or_default();
            let entry = match regions.as_slice() {
                [] => Code::Single(None),
                [only] if *only == "001" => Code::Single(match metas.first() {
                    Some(m) => Some(region_of(m)?),
                    None => None,
                }),
                [only] => Code::Single(match lookup(db, only) {
                    Some(m) => Some(region_of(m)?),
                    None => None,
                }),
                several => {
                    let mut list = Vec::with_capacity(several.len());
                    for id in several {
                        // The port unwraps both look-ups here.
                        let tried = region_of(db.by_id(*id)?)?;
                        let _: phonenumber::country::Id = id.parse().ok()?;
                        let found = match lookup(db, id) {
                            Some(m) => Some(region_of(m)?),
                            None => None,
                        };
                        list.push((tried, found));
                    }
                    Code::Several(list)
                }
            };
            codes.push(Some(entry));
        }
        Some(Self { codes, countries })
    }

    /// The port's `source_for`: the region whose metadata applies to `national`, and whether
    /// that region was chosen because `national` is a valid number of it (which the caller then
    /// need not check again).
    fn region(&self, code: &Code, national: &str) -> Option<(&Region, bool)> {
        match code {
            Code::Single(region) => region.map(|i| (&self.countries[i], false)),
            Code::Several(list) => {
                for &(tried, found) in list {
                    let region = &self.countries[tried];
                    let (applies, valid) = match &region.leading_digits {
                        Some(leading) => (leading.matches_start_of(national), false),
                        None => {
                            let valid = region.is_valid_number(national);
                            (valid, valid)
                        }
                    };
                    if applies {
                        return found.map(|i| (&self.countries[i], valid && i == tried));
                    }
                }
                None
            }
        }
    }

    /// The E.164 form of `+digits` when libphonenumber (the port) calls it a valid number.
    /// `digits` holds ASCII digits only.
    pub(super) fn e164(&self, digits: &str) -> Option<String> {
        // `is_viable` wants three digits, the country code step more than two.
        if digits.len() < 3 || digits.starts_with('0') {
            return None;
        }
        let (code, entry, national) = (1..=3).find_map(|len| {
            let code: u16 = digits[..len].parse().ok()?;
            let entry = self.codes.get(usize::from(code))?.as_ref()?;
            // The code as the port writes it back: the digits themselves (no leading zero).
            Some((&digits[..len], entry, &digits[len..]))
        })?;
        // Both lookups below usually see the same digits (no trunk prefix in an E.164 input):
        // the first answer is then reused, so a shared country code (NANP) walks its patterns
        // once rather than up to three times.
        let unstripped = national.trim_start_matches('0');
        let first = self.region(entry, unstripped);
        let national = match first {
            Some((region, _)) => {
                let mut potential = region.strip_national_prefix(national);
                if let Some(prefix) = &region.national_prefix
                    && potential.starts_with(prefix.as_str())
                {
                    potential = match potential {
                        Cow::Borrowed(rest) => Cow::Borrowed(&rest[prefix.len()..]),
                        Cow::Owned(mut rest) => {
                            rest.drain(..prefix.len());
                            Cow::Owned(rest)
                        }
                    };
                }
                if region.is_too_short(potential.len()) {
                    Cow::Borrowed(national)
                } else {
                    potential
                }
            }
            None => Cow::Borrowed(national),
        };
        if !(2..=17).contains(&national.len()) {
            return None;
        }
        // `NationalNumber`: the leading zeros counted, the rest a u64 below 2^56.
        let zeros = national.bytes().take_while(|&b| b == b'0').count();
        let value: u64 = national[zeros..].parse().ok()?;
        if value >= 1 << 56 {
            return None;
        }
        let (region, known_valid) = if *national == *unstripped {
            first?
        } else {
            self.region(entry, &national)?
        };
        if !known_valid && !region.is_valid_number(&national) {
            return None;
        }
        let mut e164 = String::with_capacity(1 + code.len() + national.len());
        e164.push('+');
        e164.push_str(code);
        e164.push_str(&national);
        Some(e164)
    }

    /// How many patterns fell back from a DFA to the meta engine (for the tests).
    #[cfg(test)]
    pub(super) fn fallbacks(&self) -> usize {
        self.countries
            .iter()
            .flat_map(|r| {
                std::iter::once(&r.general.pattern)
                    .chain(r.kinds.iter().map(|k| &k.pattern))
                    .chain(r.leading_digits.iter())
                    .chain(r.national_prefix_for_parsing.iter().map(|p| &p.pattern))
            })
            .filter(|p| matches!(p, Prefix::Meta(_)))
            .count()
    }
}

/// A region looked up as the port does after `source_for`: the id parsed as a country, then by
/// that country's id.
fn lookup<'a>(db: &'a phonenumber::metadata::Database, id: &str) -> Option<&'a Metadata> {
    let id: phonenumber::country::Id = id.parse().ok()?;
    db.by_id(id.as_ref())
}
