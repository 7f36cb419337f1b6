//! The manual pages and shell completions of the two binaries, made from their clap definitions
//! (so they cannot drift from the options): `jpkid --generate-manual DIR` and
//! `jpkictl generate-manual DIR` write them at package build time.

use std::path::Path;

use clap_complete::Shell;

/// Writes the manual pages of `command` — `DIR/<name>.<section>`, and one page per visible
/// subcommand, `DIR/<name>-<sub>.<section>`, which the main page lists — and its bash, zsh and
/// fish completions: `DIR/<name>.bash`, `DIR/_<name>`, `DIR/<name>.fish`.
///
/// # Errors
/// The I/O error of a file that cannot be written.
pub fn generate(mut command: clap::Command, section: &str, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let name = command.get_name().to_owned();
    command = command.disable_help_subcommand(true);
    command.build();
    pages(&command, section, dir)?;
    for (shell, file) in [
        (Shell::Bash, format!("{name}.bash")),
        (Shell::Zsh, format!("_{name}")),
        (Shell::Fish, format!("{name}.fish")),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut command, name.clone(), &mut out);
        std::fs::write(dir.join(file), out)?;
    }
    Ok(())
}

/// The page of `command` and, before it, those of its visible subcommands (named
/// `<parent>-<sub>` once built).
fn pages(command: &clap::Command, section: &str, dir: &Path) -> std::io::Result<()> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages(sub, section, dir)?;
    }
    let man = clap_mangen::Man::new(command.clone()).section(section);
    let mut page = Vec::new();
    man.render(&mut page)?;
    std::fs::write(dir.join(man.get_filename()), page)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn writes_a_page_and_three_completions() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = clap::Command::new("demo")
            .about("a demo")
            .arg(clap::Arg::new("reader").long("reader"))
            .subcommand(clap::Command::new("pins").about("tries left"))
            .subcommand(clap::Command::new("secret").hide(true));
        generate(cmd, "1", dir.path()).unwrap();
        let page = std::fs::read_to_string(dir.path().join("demo.1")).unwrap();
        assert!(page.contains(".TH demo 1"), "{page}");
        assert!(page.contains("reader"));
        let sub = std::fs::read_to_string(dir.path().join("demo-pins.1")).unwrap();
        assert!(sub.contains("tries left"), "{sub}");
        assert!(
            !dir.path().join("demo-secret.1").exists(),
            "hidden: no page"
        );
        for f in ["demo.bash", "_demo", "demo.fish"] {
            let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
            assert!(text.contains("reader"), "{f}: {text}");
        }
    }
}
