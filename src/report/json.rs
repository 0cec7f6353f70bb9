//! The JSON report: [`super::ScanReport`] serialised as is, pretty-printed.
//!
//! Layout (schema version 1.4, `reports/schema/secgate-report.v1.schema.json`; `plan_id` and
//! `shard` appear only in shard and merged reports, see [`crate::shard`]):
//! `{schema_version, schema_minor, tool{name,version}, started_at, finished_at, duration_ms,
//! complete, policy{min_score,max_critical,max_high,max_medium,max_low,fail_on,gate_on,
//! fail_on_stale,allow_permanent_suppressions,max_suppression_days}, families[],
//! targets[{target,address,status,error,requests{family: n},backoff?}],
//! results[{rule_id,family,target,status,severity,title,message,evidence,reason?,fingerprint,
//! findings[{subject{kind,key},message,evidence,fingerprint,
//! suppression{reason,owner,expires,source}|null,baseline_state?}],
//! subjects?[{subject,status,message,reason?}], suppressed?, suppression?}],
//! summary{score,family_scores,counts,results{..,suppressed},gate{passed,verdict,reasons}},
//! suppressions{file,applied,expired[],expiring_soon[],stale[]},
//! baseline?{file,counts{new,unchanged,updated,fixed,absent},fixed[],absent[]},
//! compliance?[{framework,name,version,source,note?,counts{met,not_met,not_assessed},
//! requirements[{id,tag,title,v4?,status,reason,caveat?,assessable,
//! rules[{rule_id,counts,targets[{target,status,suppressed?}]}]}]}]}` (`compliance` with
//! `--compliance` only, see [`crate::compliance`]).
//! Evidence values are strings, numbers, booleans, lists, or `{"bytes": base64}` for
//! non-UTF-8 data.

use std::io::{self, Write};

use super::ScanReport;

/// The JSON writer.
#[derive(Debug)]
pub struct Json;

impl super::Writer for Json {
    fn write(&self, report: &ScanReport, out: &mut dyn Write) -> io::Result<()> {
        // A concrete buffer in front of `out`: serde writes token by token, and through
        // `dyn Write` each token was a call of its own.
        let mut out = io::BufWriter::with_capacity(1 << 16, out);
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
        out.flush()
    }
}
