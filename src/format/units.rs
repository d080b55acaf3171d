//! Where each top-level unit of an app lives at run time, and why: the
//! report `pack` writes into the archive (`REPORT`) for `inspect`. The
//! runtime reads only the manifest's list of extracted units.

use serde::{Deserialize, Serialize};

/// The report's entry in the archive.
pub const REPORT: &str = ".pyferry/units.json";

/// The standard library's top-level modules that `--stdlib minimal` left
/// out (a JSON list), for `inspect`.
pub const LEFT_OUT: &str = ".pyferry/stdlib-left-out.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitReport {
    /// A top-level package, module or directory of the archive.
    pub name: String,
    #[serde(flatten)]
    pub placement: Placement,
}

/// Extracted to the cache (and imported from there), or imported straight
/// from the archive; with the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "placement", content = "why", rename_all = "lowercase")]
pub enum Placement {
    Extracted(String),
    Archived(String),
}

impl UnitReport {
    pub fn is_extracted(&self) -> bool {
        matches!(self.placement, Placement::Extracted(_))
    }
}

/// The names of the extracted units, in report order: the manifest's list.
pub fn extracted_names(units: &[UnitReport]) -> Vec<String> {
    units
        .iter()
        .filter(|unit| unit.is_extracted())
        .map(|unit| unit.name.clone())
        .collect()
}
