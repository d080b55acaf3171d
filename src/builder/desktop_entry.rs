//! Freedesktop `.desktop` entries, so that a packed app appears in
//! application menus (`pack --desktop-entry`, `pyferry desktop-entry`).

/// A `.desktop` file that starts `exec` (an absolute path), so
/// that the app appears in application menus.
pub fn desktop_entry(
    name: &str,
    exec: &std::path::Path,
    icon: Option<&std::path::Path>,
    terminal: bool,
) -> String {
    let mut entry = format!(
        "[Desktop Entry]\nType=Application\nName={}\nExec={}\nTerminal={terminal}\n",
        escape_string(name),
        escape_string(&quote_exec_argument(&exec.to_string_lossy())),
    );
    if let Some(icon) = icon {
        entry.push_str(&format!(
            "Icon={}\n",
            escape_string(&icon.to_string_lossy())
        ));
    }
    entry
}

/// One argument of an `Exec` key: double-quoted, with `"`, `` ` ``, `$` and
/// `\` escaped inside the quotes, and `%` doubled (it starts field codes).
fn quote_exec_argument(argument: &str) -> String {
    let mut quoted = String::from("\"");
    for c in argument.chars() {
        match c {
            '"' | '`' | '$' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            '%' => quoted.push_str("%%"),
            _ => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// The escapes of a desktop-entry string value.
fn escape_string(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\t', "\\t")
        .replace('\r', "\\r")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn desktop_entries_quote_and_escape() {
        let entry = desktop_entry(
            "My App",
            Path::new("/opt/my apps/$x/100%/a\"b\\c"),
            Some(Path::new("/usr/share/icons/app.png")),
            false,
        );
        assert_eq!(
            entry,
            "[Desktop Entry]\nType=Application\nName=My App\n\
             Exec=\"/opt/my apps/\\\\$x/100%%/a\\\\\"b\\\\\\\\c\"\nTerminal=false\n\
             Icon=/usr/share/icons/app.png\n"
        );
    }
}
