//! Printing results for people or, with `--json`, for programs, and progress bars on stderr.

use std::fmt::Display;
use std::io::Write as _;

use cairn_client::storage::{Progress, Stage};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Prints `value` as pretty JSON when `json` is set, else the human text. A closed stdout
/// (`cairn ... | head`) ends the output quietly instead of failing.
pub fn print<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    let text = if json {
        serde_json::to_string_pretty(value)?
    } else {
        human()
    };
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Prints a report: as JSON, or as its `Display` text.
pub fn show<T: Serialize + Display>(json: bool, report: &T) -> anyhow::Result<()> {
    print(json, report, || report.to_string())
}

/// Progress bars of the storage flows, on stderr (hidden when it is not a terminal).
#[derive(Default)]
pub struct Bars(Option<ProgressBar>);

impl Progress for Bars {
    fn begin(&mut self, stage: Stage, total: Option<u64>) {
        let bar = if stage == Stage::WaitingForProviders {
            ProgressBar::new_spinner()
        } else {
            let bar = ProgressBar::new(total.unwrap_or(0));
            let template = "{msg:>12} [{bar:40}] {pos}/{len} pieces {bytes_per_sec} {eta}";
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        };
        bar.set_message(stage.label());
        self.0 = Some(bar);
    }

    fn update(&mut self, done: u64, total: u64) {
        match &self.0 {
            Some(bar) if bar.length().is_some() => {
                bar.set_length(total);
                bar.set_position(done);
            }
            Some(bar) => bar.tick(),
            None => {}
        }
    }

    fn end(&mut self, ok: bool) {
        match self.0.take() {
            Some(bar) if ok => bar.finish_and_clear(),
            Some(bar) => bar.abandon(),
            None => {}
        }
    }
}
