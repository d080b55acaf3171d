//! Qt's platform plugins, and the libraries each takes from the user's
//! desktop. Wheels of Qt bindings (PySide6, PyQt6, PySide2, PyQt5) carry Qt
//! itself, and leave X11, xcb, GL, fonts and Wayland to the desktop, as the
//! manylinux policy expects. When one of those is missing, Qt aborts with
//! "could not load the Qt platform plugin" and names nothing; the manifest
//! lists them (`format::manifest::QtPlatforms`), so that the runtime can name
//! what to install.

use super::needed::NeededLibraries;
use super::tree::Tree;
use super::units::is_native_file;
use crate::error::Result;
use crate::format::archive_path;
use crate::format::manifest::QtPlatforms;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

/// glibc's libraries: every Linux desktop has them.
const GLIBC: &[&str] = &[
    "ld-linux-x86-64.so.2",
    "libc.so.6",
    "libdl.so.2",
    "libm.so.6",
    "libmvec.so.1",
    "libpthread.so.0",
    "libresolv.so.2",
    "librt.so.1",
    "libutil.so.1",
];

/// The platform plugins of each Qt binding in the app, with the libraries
/// each needs from outside the app (directly, or through the app's own
/// libraries, which Qt finds by their RUNPATH), and the binding's modules
/// that need Qt's GUI library, whose import the runtime watches.
pub fn find(tree: &Tree, needed: &mut NeededLibraries) -> Result<Vec<QtPlatforms>> {
    let mut bindings: BTreeMap<&str, QtPlatforms> = BTreeMap::new();
    let plugins = tree
        .files
        .keys()
        .filter_map(|name| Some((name.as_str(), platform_of(name)?)));
    for (name, platform) in plugins {
        let binding = archive_path::top_level(name);
        bindings
            .entry(binding)
            .or_insert_with(|| QtPlatforms {
                modules: Vec::new(),
                plugins: BTreeMap::new(),
            })
            .plugins
            .insert(platform.to_owned(), Vec::new());
    }
    if bindings.is_empty() {
        return Ok(Vec::new());
    }
    // The app's own libraries by file name, as `DT_NEEDED` names them.
    let brought: HashMap<&str, &Path> = tree
        .files
        .iter()
        .filter(|(name, _)| is_native_file(name))
        .map(|(name, file)| (file_name(name), file.path.as_path()))
        .collect();
    let mut needs = Needs {
        brought: &brought,
        needed,
    };
    for (name, file) in &tree.files {
        let binding = archive_path::top_level(name);
        let Some(qt) = bindings.get_mut(binding) else {
            continue;
        };
        if let Some(platform) = platform_of(name) {
            let reached = needs.reached(&file.path)?;
            let system = reached.system.into_iter().collect();
            qt.plugins.insert(platform.to_owned(), system);
        } else if let Some(module) = extension_module_of(name)
            && needs
                .reached(&file.path)?
                .own
                .iter()
                .any(|own| is_qt_gui(own))
        {
            qt.modules.push(format!("{binding}.{module}"));
        }
    }
    Ok(bindings
        .into_values()
        .filter(|qt| !qt.modules.is_empty())
        .collect())
}

/// `QtWidgets` for `PySide6/QtWidgets.abi3.so`: an extension module right
/// in the binding's package.
fn extension_module_of(name: &str) -> Option<&str> {
    let (_, file) = name.split_once('/')?;
    if file.contains('/') || !file.ends_with(".so") {
        return None;
    }
    file.split('.')
        .next()
        .filter(|module| module.starts_with("Qt"))
}

/// Qt's GUI library: `libQt6Gui.so.6`, `libQt5Gui.so.5`.
fn is_qt_gui(soname: &str) -> bool {
    soname
        .strip_prefix("libQt")
        .map(|rest| rest.trim_start_matches(|c: char| c.is_ascii_digit()))
        .is_some_and(|rest| rest.starts_with("Gui.so"))
}

/// `xcb` for `.../plugins/platforms/libqxcb.so`, the platform name that
/// `QT_QPA_PLATFORM` uses (`wayland-egl` is served by `libqwayland.so`,
/// which the runtime knows).
fn platform_of(name: &str) -> Option<&str> {
    let (dir, file) = name.rsplit_once('/')?;
    if !dir.ends_with("/plugins/platforms") {
        return None;
    }
    file.strip_prefix("libq")?
        .strip_suffix(".so")
        .filter(|platform| !platform.is_empty())
}

fn file_name(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// What shared objects need from the system.
struct Needs<'t> {
    brought: &'t HashMap<&'t str, &'t Path>,
    needed: &'t mut NeededLibraries,
}

impl<'t> Needs<'t> {
    /// What `path` needs, following the app's own libraries: those it
    /// reaches of the app's, and the rest, which neither the app nor glibc
    /// brings.
    fn reached(&mut self, path: &'t Path) -> Result<Reached> {
        let mut reached = Reached::default();
        let mut seen = BTreeSet::from([path]);
        let mut pending = vec![path];
        while let Some(file) = pending.pop() {
            for soname in self.needed.of(file)?.to_vec() {
                if let Some(own) = self.brought.get(soname.as_str()) {
                    if seen.insert(*own) {
                        pending.push(*own);
                    }
                    reached.own.insert(soname);
                } else if !GLIBC.contains(&soname.as_str()) {
                    reached.system.insert(soname);
                }
            }
        }
        Ok(reached)
    }
}

#[derive(Default)]
struct Reached {
    own: BTreeSet<String>,
    system: BTreeSet<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_plugins_are_named_as_qt_names_them() {
        let name = |path| platform_of(path);
        assert_eq!(name("PySide6/Qt/plugins/platforms/libqxcb.so"), Some("xcb"));
        assert_eq!(
            name("PyQt5/Qt5/plugins/platforms/libqwayland-egl.so"),
            Some("wayland-egl")
        );
        assert_eq!(name("PySide6/Qt/plugins/imageformats/libqgif.so"), None);
        assert_eq!(name("PySide6/Qt/lib/libQt6Core.so.6"), None);
        assert_eq!(name("plugins/platforms/libqxcb.so"), None);
    }

    #[test]
    fn gui_modules_are_the_bindings_extension_modules_that_reach_qt_gui() {
        assert_eq!(
            extension_module_of("PySide6/QtWidgets.abi3.so"),
            Some("QtWidgets")
        );
        assert_eq!(
            extension_module_of("PyQt5/QtGui.cpython-311-x86_64-linux-gnu.so"),
            Some("QtGui")
        );
        assert_eq!(extension_module_of("PySide6/Qt/lib/libQt6Gui.so.6"), None);
        assert_eq!(extension_module_of("PySide6/QtWidgets.pyi"), None);
        assert!(is_qt_gui("libQt6Gui.so.6") && is_qt_gui("libQt5Gui.so.5"));
        assert!(!is_qt_gui("libQt6GuiPrivate.so.6") && !is_qt_gui("libQt6Core.so.6"));
    }
}
