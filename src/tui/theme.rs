//! Themes: semantic style slots, the built-in themes (`themes/*.toml`,
//! embedded), user theme files, and adapting a theme to what the terminal
//! can show (NO_COLOR, 16 colours).
//!
//! A theme file has a `name`, an optional `extends` (a built-in, default
//! "default") and one `[slots]` entry per slot:
//! `failed = { fg = "#ff5f5f", bg = "black", modifiers = ["bold"] }`.
//! A slot a file sets replaces the inherited style of that slot as a whole.

use std::collections::BTreeSet;
use std::path::Path;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// Semantic slots. Every field is a ratatui Style.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    /// Default text on the background.
    pub base: Style,
    /// Secondary text, disabled items, "·" placeholders.
    pub muted: Style,
    pub border: Style,
    pub border_focus: Style,
    pub title: Style,
    /// The selected row.
    pub selection: Style,
    /// The top bar.
    pub header: Style,
    /// Key names in the footer / help.
    pub footer_key: Style,
    pub footer_text: Style,
    pub succeeded: Style,
    pub failed: Style,
    pub in_progress: Style,
    pub stopped: Style,
    pub superseded: Style,
    /// Approvals pending, inbound waiters.
    pub waiting: Style,
    pub skipped: Style,
    pub disabled_transition: Style,
    pub log_error: Style,
    pub log_warn: Style,
    pub log_info: Style,
    pub log_debug: Style,
    pub log_timestamp: Style,
    /// "[Container] Entering phase" headers.
    pub log_phase: Style,
    pub search_match: Style,
    pub search_current: Style,
    pub toast_info: Style,
    pub toast_error: Style,
    /// Confirm dialogs, the palette.
    pub popup: Style,
}

/// Generates the by-name access to the slots from one list, so the list, the
/// lookup and the mapping cannot drift apart (the struct literal in
/// `map_styles` fails to compile if a field is missing).
macro_rules! slots {
    ($($slot:ident),* $(,)?) => {
        impl Theme {
            /// Every slot name, in declaration order (the keys of `[slots]`).
            pub const SLOTS: &'static [&'static str] = &[$(stringify!($slot)),*];

            /// The style of a slot by name.
            pub fn slot(&self, name: &str) -> Option<Style> {
                match name {
                    $(stringify!($slot) => Some(self.$slot),)*
                    _ => None,
                }
            }

            fn slot_mut(&mut self, name: &str) -> Option<&mut Style> {
                match name {
                    $(stringify!($slot) => Some(&mut self.$slot),)*
                    _ => None,
                }
            }

            fn map_styles(&self, f: impl Fn(Style) -> Style) -> Theme {
                Theme { name: self.name.clone(), $($slot: f(self.$slot),)* }
            }

            fn blank(name: &str) -> Theme {
                Theme { name: name.to_string(), $($slot: Style::new(),)* }
            }
        }
    };
}

slots! {
    base, muted, border, border_focus, title, selection, header, footer_key, footer_text,
    succeeded, failed, in_progress, stopped, superseded, waiting, skipped, disabled_transition,
    log_error, log_warn, log_info, log_debug, log_timestamp, log_phase,
    search_match, search_current, toast_info, toast_error, popup,
}

/// The embedded built-in theme files, in `Theme::BUILTIN` order.
#[rustfmt::skip]
const BUILTIN_FILES: [(&str, &str); 4] = [
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    ("high-contrast", include_str!("../../themes/high-contrast.toml")),
    ("catppuccin-mocha", include_str!("../../themes/catppuccin-mocha.toml")),
];

/// The NO_COLOR theme: modifiers only (not selectable by name).
const NO_COLOR_FILE: &str = include_str!("../../themes/no-color.toml");

/// ANSI colour names (the first 16 in index order 0-15), for `to_16_colors`
/// and "did you mean"; parsing is ratatui's `Color::from_str`.
#[rustfmt::skip]
const COLOR_NAMES: &[&str] = &[
    "black", "red", "green", "yellow", "blue", "magenta", "cyan", "gray", "darkgray",
    "lightred", "lightgreen", "lightyellow", "lightblue", "lightmagenta", "lightcyan", "white",
    "reset",
];

#[rustfmt::skip]
const MODIFIER_NAMES: &[(&str, Modifier)] = &[
    ("bold", Modifier::BOLD), ("dim", Modifier::DIM), ("italic", Modifier::ITALIC),
    ("underlined", Modifier::UNDERLINED), ("underline", Modifier::UNDERLINED),
    ("reversed", Modifier::REVERSED), ("crossed_out", Modifier::CROSSED_OUT),
];

/// A theme file as written; slot bodies are checked by hand for warnings.
#[derive(Debug, Deserialize)]
struct ThemeFile {
    name: Option<String>,
    extends: Option<String>,
    #[serde(default)]
    slots: toml::Table,
    #[serde(flatten)]
    unknown: toml::Table,
}

impl Default for Theme {
    fn default() -> Theme {
        Theme::builtin("default").unwrap_or_else(|| Theme::blank("default"))
    }
}

impl Theme {
    pub const BUILTIN: &'static [&'static str] =
        &["default", "light", "high-contrast", "catppuccin-mocha"];

    /// A built-in theme by name.
    pub fn builtin(name: &str) -> Option<Theme> {
        let (_, text) = BUILTIN_FILES.iter().find(|(n, _)| *n == name)?;
        parse_embedded(name, text).map(|(theme, _, _)| theme)
    }

    /// Chooses a theme: `name` from the user's themes dir (`<dir>/<name>.toml`)
    /// first, else a built-in. A user file may set only some slots; the rest
    /// come from the built-in named by `extends` (default "default").
    /// Problems become human-readable warnings, never an error: the result
    /// falls back to "default".
    pub fn load(name: &str, user_dir: Option<&Path>) -> (Theme, Vec<String>) {
        let mut warnings = Vec::new();
        let plain = !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\']);
        let path = user_dir
            .filter(|_| plain)
            .map(|d| d.join(format!("{name}.toml")));
        if let Some(path) = path.filter(|p| p.is_file()) {
            if let Some(theme) = load_user_file(name, &path, &mut warnings) {
                return (theme, warnings);
            }
            let fallback = Theme::builtin(name).unwrap_or_default();
            let (path, used) = (path.display(), &fallback.name);
            warnings.push(format!(
                "{path}: not used; using the built-in theme \"{used}\""
            ));
            return (fallback, warnings);
        }
        if let Some(theme) = Theme::builtin(name) {
            return (theme, warnings);
        }
        let mut available: Vec<String> = Theme::BUILTIN.iter().map(|s| s.to_string()).collect();
        available.extend(user_theme_names(user_dir));
        let hint = did_you_mean(name, available.iter().map(String::as_str));
        warnings.push(format!(
            "unknown theme \"{name}\"{hint}; using \"default\" (available: {})",
            available.join(", ")
        ));
        (Theme::default(), warnings)
    }

    /// NO_COLOR (https://no-color.org): no colours at all, only modifiers,
    /// so status stays distinguishable by glyph and emphasis.
    pub fn no_color() -> Theme {
        parse_embedded("no-color", NO_COLOR_FILE)
            .map(|(theme, _, _)| theme)
            .unwrap_or_else(|| Theme::blank("no-color"))
    }

    /// For terminals with 16 colours: every Rgb / Indexed colour mapped to the
    /// nearest of the 16 ANSI colours (by hue and brightness, so pastel
    /// palettes keep their hues instead of all turning gray).
    pub fn to_16_colors(&self) -> Theme {
        self.map_styles(|mut style| {
            style.fg = style.fg.map(to_ansi16);
            style.bg = style.bg.map(to_ansi16);
            style
        })
    }

    /// What the environment asks for: NO_COLOR set (non-empty) → `no_color()`;
    /// COLORTERM truecolor/24bit → as is; TERM containing "256color" → as is;
    /// otherwise (e.g. TERM=xterm, linux) → `to_16_colors()`.
    pub fn for_terminal(
        self,
        no_color: Option<&str>,
        colorterm: Option<&str>,
        term: Option<&str>,
    ) -> Theme {
        if no_color.is_some_and(|v| !v.is_empty()) {
            return Theme::no_color();
        }
        let truecolor = colorterm.is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("truecolor") || v.eq_ignore_ascii_case("24bit")
        });
        if truecolor || term.is_some_and(|t| t.contains("256color")) {
            return self;
        }
        self.to_16_colors()
    }

    /// `for_terminal` with NO_COLOR, COLORTERM and TERM from the process
    /// environment.
    pub fn for_current_terminal(self) -> Theme {
        let var = |key: &str| std::env::var(key).ok();
        let (no_color, colorterm, term) = (var("NO_COLOR"), var("COLORTERM"), var("TERM"));
        self.for_terminal(no_color.as_deref(), colorterm.as_deref(), term.as_deref())
    }
}

/// Parses an embedded theme onto a blank theme: the theme, its warnings and
/// the slots it leaves unset (both must be empty; a unit test checks).
fn parse_embedded(name: &str, text: &str) -> Option<(Theme, Vec<String>, Vec<&'static str>)> {
    let source = format!("built-in theme \"{name}\"");
    let mut warnings = Vec::new();
    let file = parse_file(&source, text, &mut warnings)?;
    let mut theme = Theme::blank(name);
    let set = apply_slots(&mut theme, &file.slots, &source, &mut warnings);
    let missing = Theme::SLOTS
        .iter()
        .copied()
        .filter(|s| !set.contains(s))
        .collect();
    Some((theme, warnings, missing))
}

fn parse_file(source: &str, text: &str, warnings: &mut Vec<String>) -> Option<ThemeFile> {
    match toml::from_str::<ThemeFile>(text) {
        Ok(file) => {
            for key in file.unknown.keys() {
                let hint = did_you_mean(key, ["name", "extends", "slots"]);
                warnings.push(format!(
                    "{source}: unknown key \"{key}\"{hint} (expected name, extends, [slots])"
                ));
            }
            Some(file)
        }
        Err(e) => {
            // One line: "TOML parse error at line 1, column 7: <message>".
            let error = e.to_string();
            let at = error.lines().next().unwrap_or_default();
            warnings.push(format!("{source}: not a theme file: {at}: {}", e.message()));
            None
        }
    }
}

/// A user theme file on top of the built-in it extends; `None` if the file
/// cannot be read or is not a theme file at all.
fn load_user_file(name: &str, path: &Path, warnings: &mut Vec<String>) -> Option<Theme> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| warnings.push(format!("{source}: cannot read: {e}")))
        .ok()?;
    let file = parse_file(&source, &text, warnings)?;
    let extends = file.extends.as_deref().unwrap_or("default");
    let mut theme = Theme::builtin(extends).unwrap_or_else(|| {
        let hint = did_you_mean(extends, Theme::BUILTIN.iter().copied());
        warnings.push(format!(
            "{source}: extends unknown built-in theme \"{extends}\"{hint}; extending \"default\" \
             (built-ins: {})",
            Theme::BUILTIN.join(", ")
        ));
        Theme::default()
    });
    theme.name = file.name.clone().unwrap_or_else(|| name.to_string());
    apply_slots(&mut theme, &file.slots, &source, warnings);
    Some(theme)
}

/// Sets every slot in `slots` on `theme` (a set slot replaces the inherited
/// style; a bad colour keeps the inherited one). Returns the slots set.
fn apply_slots(
    theme: &mut Theme,
    slots: &toml::Table,
    source: &str,
    warnings: &mut Vec<String>,
) -> BTreeSet<&'static str> {
    let mut set = BTreeSet::new();
    for (key, value) in slots {
        let Some(slot) = Theme::SLOTS.iter().copied().find(|s| s == key) else {
            let hint = did_you_mean(key, Theme::SLOTS.iter().copied());
            let known = if hint.is_empty() {
                format!(" (slots: {})", Theme::SLOTS.join(", "))
            } else {
                String::new()
            };
            warnings.push(format!("{source}: unknown slot \"{key}\"{hint}{known}"));
            continue;
        };
        let Some(target) = theme.slot_mut(slot) else {
            continue;
        };
        let mut warn = |what: &str, msg: String| {
            warnings.push(format!("{source}: slot \"{slot}\", {what}: {msg}"));
        };
        let Some(table) = value.as_table() else {
            warn(
                "value",
                "expected a table like { fg = \"red\", modifiers = [\"bold\"] }".into(),
            );
            continue;
        };
        let inherited = *target;
        let mut style = Style::new();
        for (field, v) in table {
            match field.as_str() {
                "fg" | "bg" => {
                    let (color, old) = match field.as_str() {
                        "fg" => (&mut style.fg, inherited.fg),
                        _ => (&mut style.bg, inherited.bg),
                    };
                    *color = parse_color(v).map(Some).unwrap_or_else(|e| {
                        warn(field, format!("{e}; keeping the inherited colour"));
                        old
                    });
                }
                "modifiers" => {
                    let Some(items) = v.as_array() else {
                        warn(field, format!("expected a list like [\"bold\"], got {v}"));
                        continue;
                    };
                    for item in items {
                        match parse_modifier(item) {
                            Ok(m) => style = style.add_modifier(m),
                            Err(e) => warn(field, e),
                        }
                    }
                }
                other => {
                    let hint = did_you_mean(other, ["fg", "bg", "modifiers"]);
                    let msg = format!("\"{other}\"{hint} (expected fg, bg, modifiers)");
                    warn("unknown key", msg);
                }
            }
        }
        *target = style;
        set.insert(slot);
    }
    set
}

/// A colour: an ANSI name, `#rrggbb`, or an index 0-255 (integer or string).
fn parse_color(value: &toml::Value) -> Result<Color, String> {
    let parsed = match value {
        toml::Value::Integer(i) => u8::try_from(*i).ok().map(Color::Indexed),
        toml::Value::String(s) => s.trim().parse::<Color>().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| {
        let name = value.as_str().unwrap_or_default();
        let name = name.to_ascii_lowercase().replace(['_', '-', ' '], "");
        let hint = did_you_mean(&name, COLOR_NAMES.iter().copied());
        format!("bad colour {value}{hint} (expected an ANSI colour name, \"#rrggbb\" or 0-255)")
    })
}

fn parse_modifier(value: &toml::Value) -> Result<Modifier, String> {
    let known = "bold, dim, italic, underlined, reversed, crossed_out";
    let Some(name) = value.as_str() else {
        return Err(format!("expected a modifier name ({known}), got {value}"));
    };
    let key = name.trim().to_ascii_lowercase().replace(['-', ' '], "_");
    match MODIFIER_NAMES.iter().find(|(n, _)| *n == key) {
        Some((_, m)) => Ok(*m),
        None => {
            let hint = did_you_mean(&key, MODIFIER_NAMES.iter().map(|(n, _)| *n));
            Err(format!("unknown modifier \"{name}\"{hint} ({known})"))
        }
    }
}

/// ` (did you mean "x"?)` for the closest candidate, or "".
fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let word = word.to_ascii_lowercase();
    let distance = |c: &str| strsim::damerau_levenshtein(&word, &c.to_ascii_lowercase());
    candidates
        .into_iter()
        .map(|c| (distance(c), c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!(" (did you mean \"{c}\"?)"))
        .unwrap_or_default()
}

/// The theme names (`*.toml` stems) in the user's themes directory, sorted.
fn user_theme_names(user_dir: Option<&Path>) -> Vec<String> {
    let Some(entries) = user_dir.and_then(|d| std::fs::read_dir(d).ok()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
        .filter(|n| !Theme::BUILTIN.contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

fn to_ansi16(color: Color) -> Color {
    let index = match color {
        Color::Rgb(r, g, b) => nearest_ansi16(r, g, b),
        Color::Indexed(i) if i < 16 => i,
        Color::Indexed(i) => {
            let (r, g, b) = indexed_rgb(i);
            nearest_ansi16(r, g, b)
        }
        other => return other,
    };
    COLOR_NAMES[usize::from(index)].parse().unwrap_or(color)
}

/// The xterm RGB value of a 256-colour index 16-255.
fn indexed_rgb(i: u8) -> (u8, u8, u8) {
    if i >= 232 {
        let v = 8 + 10 * (i - 232);
        return (v, v, v);
    }
    let i = i.saturating_sub(16);
    let level = |x: u8| if x == 0 { 0 } else { 55 + 40 * x };
    (level(i / 36), level((i / 6) % 6), level(i % 6))
}

/// The ANSI index (0-15) nearest to a colour: near-grays go to black, dark
/// gray, gray or white by luma; other colours to the hue sector they fall in
/// (so pastel palettes keep their hues), bright if the colour is bright.
fn nearest_ansi16(r: u8, g: u8, b: u8) -> u8 {
    let (rf, gf, bf) = (f32::from(r), f32::from(g), f32::from(b));
    let (max, min) = (rf.max(gf).max(bf), rf.min(gf).min(bf));
    let chroma = max - min;
    if chroma < 32.0 || chroma / max < 0.2 {
        let luma = 0.299 * rf + 0.587 * gf + 0.114 * bf;
        let level = [64.0, 160.0, 224.0].iter().filter(|l| luma >= **l).count();
        return [0, 8, 7, 15][level];
    }
    let hue = if max == rf {
        60.0 * ((gf - bf) / chroma)
    } else if max == gf {
        60.0 * ((bf - rf) / chroma) + 120.0
    } else {
        60.0 * ((rf - gf) / chroma) + 240.0
    };
    // Sectors of 60° centred on red (0°), yellow, green, cyan, blue, magenta.
    let sector = (((hue.rem_euclid(360.0) + 30.0) / 60.0) as usize) % 6;
    [1, 3, 2, 6, 4, 5][sector] + if max >= 200.0 { 8 } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn styles(theme: &Theme) -> impl Iterator<Item = (&&'static str, Style)> {
        Theme::SLOTS.iter().map(|s| (s, theme.slot(s).unwrap()))
    }

    fn user_theme(name: &str, text: &str) -> (tempfile::TempDir, String, Theme, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        let (theme, warnings) = Theme::load(name, Some(dir.path()));
        (dir, path.display().to_string(), theme, warnings)
    }

    #[test]
    fn builtins_parse_without_warnings_and_set_every_slot() {
        let embedded = BUILTIN_FILES.iter().chain([&("no-color", NO_COLOR_FILE)]);
        for (i, (name, text)) in embedded.enumerate() {
            let (theme, warnings, missing) = parse_embedded(name, text).unwrap();
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
            assert!(missing.is_empty(), "{name} leaves unset: {missing:?}");
            if let Some(builtin) = Theme::BUILTIN.get(i) {
                assert_eq!((builtin, &theme.name), (name, &name.to_string()));
                assert_eq!(Theme::load(name, None), (theme, vec![]));
            }
        }
        assert_eq!(Theme::builtin("no-color"), None);
        assert_eq!(Theme::default().name, "default");
    }

    #[test]
    fn builtin_statuses_have_distinct_foregrounds() {
        for name in Theme::BUILTIN {
            let theme = Theme::builtin(name).unwrap();
            for t in [theme.to_16_colors(), theme] {
                let fgs = [t.succeeded.fg, t.failed.fg, t.in_progress.fg, t.waiting.fg];
                for (i, a) in fgs.iter().enumerate() {
                    assert!(a.is_some() && !fgs[i + 1..].contains(a), "{name}: {fgs:?}");
                }
            }
        }
    }

    #[test]
    fn user_file_overriding_two_slots_keeps_the_rest_from_extends() {
        let text = "name = \"mine\"\nextends = \"light\"\n[slots]\n\
            failed = { fg = \"#ff0000\", modifiers = [\"bold\", \"underlined\"] }\n\
            selection = { bg = 24 }\n";
        let (_dir, _, theme, warnings) = user_theme("mine", text);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(theme.name, "mine");
        let bold_underlined = Modifier::BOLD | Modifier::UNDERLINED;
        let failed = Style::new()
            .fg(Color::Rgb(255, 0, 0))
            .add_modifier(bold_underlined);
        assert_eq!(theme.failed, failed);
        assert_eq!(theme.selection, Style::new().bg(Color::Indexed(24)));
        let light = Theme::builtin("light").unwrap();
        for (slot, style) in styles(&theme).filter(|(s, _)| !["failed", "selection"].contains(s)) {
            assert_eq!(Some(style), light.slot(slot), "{slot}");
        }
        // Without `extends` the rest comes from "default".
        let (_dir, _, theme, warnings) = user_theme("short", "[slots]\nwaiting = { fg = 3 }");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            (theme.name.as_str(), theme.waiting),
            ("short", Style::new().fg(Color::Indexed(3)))
        );
        assert_eq!(theme.failed, Theme::default().failed);
    }

    #[test]
    fn unknown_slot_and_bad_colour_warn_with_file_and_slot() {
        let text = "extends = \"ligth\"\ncolour = 1\n[slots]\nfaild = { fg = \"red\" }\n\
            succeeded = { fg = \"#12345\", bg = \"bleu\", modifiers = [\"bold\", \"blink\"] }\n\
            waiting = { fg = 300 }\nmuted = { fgg = \"red\" }\n";
        let (_dir, path, theme, warnings) = user_theme("typos", text);
        let find = |needle: &str| -> &String {
            let found = warnings.iter().find(|w| w.contains(needle));
            found.unwrap_or_else(|| panic!("no {needle:?} in {warnings:#?}"))
        };
        assert_eq!(warnings.len(), 8, "{warnings:#?}");
        assert!(
            warnings.iter().all(|w| w.starts_with(&path)),
            "{warnings:#?}"
        );
        assert!(find("unknown slot \"faild\"").contains("did you mean \"failed\""));
        assert!(find("slot \"succeeded\", fg").contains("\"#12345\""));
        assert!(find("slot \"succeeded\", bg").contains("did you mean \"blue\""));
        assert!(find("slot \"succeeded\", modifiers").contains("\"blink\""));
        assert!(find("slot \"waiting\", fg").contains("300"));
        assert!(find("slot \"muted\", unknown key").contains("did you mean \"fg\""));
        assert!(find("extends unknown").contains("did you mean \"light\""));
        assert!(find("unknown key \"colour\"").contains(&path));
        // The theme still loads: a bad colour keeps the inherited one, the
        // good parts of the slot apply, the other slots come from "default".
        let default = Theme::default();
        let succeeded = Style::new()
            .fg(default.succeeded.fg.unwrap())
            .add_modifier(Modifier::BOLD);
        assert_eq!(theme.succeeded, succeeded);
        assert_eq!(
            (theme.failed, theme.waiting.fg),
            (default.failed, default.waiting.fg)
        );
    }

    #[test]
    fn unknown_theme_warns_and_falls_back_to_default_listing_names() {
        let (dir, _, _, _) = user_theme("mine", "[slots]\n");
        let (theme, warnings) = Theme::load("catppucin-mocha", Some(dir.path()));
        assert_eq!((theme, warnings.len()), (Theme::default(), 1));
        assert!(
            warnings[0].contains("unknown theme \"catppucin-mocha\""),
            "{warnings:?}"
        );
        assert!(
            warnings[0].contains("did you mean \"catppuccin-mocha\""),
            "{warnings:?}"
        );
        let names = "default, light, high-contrast, catppuccin-mocha, mine";
        assert!(warnings[0].contains(names), "{warnings:?}");
        assert!(Theme::load("../etc/passwd", None).1[0].contains("unknown theme"));
        // A file that is not TOML: a warning with the path, and "default".
        let (_dir, path, theme, warnings) = user_theme("broken", "[slots\nfailed = 1");
        assert_eq!(theme, Theme::default());
        assert!(warnings[0].starts_with(&path), "{warnings:?}");
        assert!(warnings[0].contains("line 1, column 7") && !warnings[0].contains('\n'));
    }

    #[test]
    fn no_color_has_no_fg_or_bg_anywhere() {
        let theme = Theme::no_color();
        for (slot, style) in styles(&theme) {
            assert_eq!((style.fg, style.bg), (None, None), "{slot}");
        }
        assert!(theme.selection.add_modifier.contains(Modifier::REVERSED));
        assert!(
            theme
                .search_match
                .add_modifier
                .contains(Modifier::UNDERLINED)
        );
        let statuses = [
            theme.succeeded,
            theme.failed,
            theme.in_progress,
            theme.waiting,
        ];
        for (i, a) in statuses.iter().enumerate() {
            assert!(!statuses[i + 1..].contains(a), "{statuses:?}");
        }
    }

    #[test]
    fn to_16_colors_leaves_no_rgb_or_indexed_colour() {
        for name in Theme::BUILTIN {
            let theme = Theme::builtin(name).unwrap().to_16_colors();
            assert_ne!(
                theme.selection.bg, theme.base.bg,
                "{name}: selection invisible"
            );
            for (slot, style) in styles(&theme) {
                for c in [style.fg, style.bg].into_iter().flatten() {
                    assert!(
                        !matches!(c, Color::Rgb(..) | Color::Indexed(_)),
                        "{name}.{slot}: {c}"
                    );
                }
            }
        }
        let cases = [
            (Color::Rgb(255, 0, 0), Color::LightRed),
            (Color::Rgb(128, 0, 0), Color::Red),
            (Color::Rgb(0x1e, 0x1e, 0x2e), Color::Black),
            (Color::Rgb(0x80, 0x80, 0x80), Color::DarkGray),
            (Color::Rgb(0xa6, 0xe3, 0xa1), Color::LightGreen),
            (Color::Indexed(9), Color::LightRed),
            (Color::Indexed(28), Color::Green),
            (Color::Indexed(255), Color::White),
            (Color::Reset, Color::Reset),
        ];
        for (from, to) in cases {
            assert_eq!(to_ansi16(from), to, "{from}");
        }
    }

    #[test]
    fn for_terminal_picks_by_environment() {
        let theme = Theme::builtin("catppuccin-mocha").unwrap();
        let pick = |nc, ct, t| theme.clone().for_terminal(nc, ct, t);
        let sixteen = theme.to_16_colors();
        assert_eq!(pick(Some("1"), Some("truecolor"), None), Theme::no_color());
        assert_eq!(pick(Some(""), Some("truecolor"), None), theme);
        assert_eq!(pick(None, Some("truecolor"), Some("xterm")), theme);
        assert_eq!(pick(None, Some("24bit"), None), theme);
        assert_eq!(pick(None, None, Some("xterm-256color")), theme);
        assert_eq!(pick(None, None, Some("xterm")), sixteen);
        assert_eq!(pick(None, None, Some("linux")), sixteen);
        assert_eq!(pick(None, None, None), sixteen);
    }
}
