//! # cairn-wasm
//!
//! The compute runner: a deterministic WASM job under fuel metering and a memory limit.
//!
//! A job is a module, an input and a fuel limit. The module imports at most three host
//! functions from `cairn`, and nothing else exists for it: no clock, no randomness, no files,
//! no network.
//! - `input_len() -> i64`: the input's length.
//! - `read_input(offset: i64, ptr: i32, len: i32) -> i32`: copies up to `len` input bytes from
//!   `offset` into memory at `ptr` and returns how many it copied (0 at the end).
//! - `write_output(ptr: i32, len: i32)`: appends `len` bytes of memory to the output.
//!
//! It exports its memory as `memory` and a function `run: [] -> []`. Floating-point
//! instructions and start functions are refused (and the SIMD proposal is not compiled in), so that every machine
//! computes the same result.
//!
//! Every job ends in one [`Outcome`]; nothing a module does can make the runner fail. A
//! [`JobResult`] holds the outcome, the fuel used and the output. The same module, input and
//! fuel limit give the same result everywhere. That is what lets a verifier check a provider by
//! re-execution, and the chain compares the results' (output root, fuel, outcome). For that
//! reason the crate has no error type: a module that fails to parse, traps or runs out of fuel
//! is an outcome the chain records, not an error.
//!
//! ## How data flows through it
//! ```text
//!  module bytes + input + Limits ─► validate (no floats, no start function, imports from
//!        `cairn` only) ─► instantiate (memory cap) ─► run() under fuel
//!        ─► JobResult { outcome, fuel_used, output, output_root (blake3) }
//! ```
//!
//! ## Example
//! ```
//! use cairn_wasm::{Limits, Outcome, run};
//!
//! let module = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "run") (loop $l (br $l))))"#)?;
//! let result = run(&module, b"", Limits { max_fuel: 10_000, ..Limits::default() });
//! assert_eq!(result.outcome, Outcome::OutOfFuel);
//! assert_eq!(result.fuel_used, 10_000);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use wasmi::{
    Caller, Config, Engine, Extern, Linker, Module, Store, StoreLimits, StoreLimitsBuilder,
    TrapCode,
};

/// How a job ended; the numbers are `ComputeMarket`'s outcome codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[repr(u8)]
pub enum Outcome {
    /// `run` returned.
    Completed = 0,
    /// The fuel limit was reached.
    OutOfFuel = 1,
    /// The module trapped: `unreachable`, an out-of-bounds access, a memory grown past the
    /// limit, an output past its limit, a bad host call.
    Trapped = 2,
    /// Not a valid module for the runner: bad bytes, floats, a start function, an unknown
    /// import, no `run` or `memory` export, memory over the limit from the start.
    InvalidModule = 3,
    /// Never produced by [`run`]: the answer of a party that could not get the job's module
    /// or input from anyone. The chain slashes nobody for it and pays nobody.
    InputUnavailable = 4,
}

impl Outcome {
    /// The outcome of a contract's code.
    pub fn from_code(code: u8) -> Option<Self> {
        [
            Self::Completed,
            Self::OutOfFuel,
            Self::Trapped,
            Self::InvalidModule,
            Self::InputUnavailable,
        ]
        .into_iter()
        .find(|o| *o as u8 == code)
    }

    /// The outcome's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::OutOfFuel => "out of fuel",
            Self::Trapped => "trapped",
            Self::InvalidModule => "invalid module",
            Self::InputUnavailable => "input unavailable",
        }
    }
}

/// What a job may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fuel (roughly, instructions executed).
    pub max_fuel: u64,
    /// Linear memory, bytes.
    pub max_memory: usize,
    /// Output, bytes.
    pub max_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_fuel: 1_000_000_000,
            max_memory: 64 << 20,
            max_output: 16 << 20,
        }
    }
}

/// The fuel a host call costs: a base plus one unit per 64 bytes copied.
const HOST_CALL_FUEL: u64 = 10;

/// The result of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobResult {
    /// How it ended.
    pub outcome: Outcome,
    /// Fuel used (the whole limit when it ran out).
    pub fuel_used: u64,
    /// What it wrote; empty unless it completed.
    pub output: Vec<u8>,
}

impl JobResult {
    /// blake3 of the output: what the chain records.
    pub fn output_root(&self) -> [u8; 32] {
        *blake3::hash(&self.output).as_bytes()
    }
}

struct JobState<'a> {
    input: &'a [u8],
    output: Vec<u8>,
    max_output: usize,
    limits: StoreLimits,
}

fn engine() -> Engine {
    let mut config = Config::default();
    config
        .consume_fuel(true)
        .floats(false)
        .allow_start_fn(false);
    Engine::new(&config)
}

fn charge(caller: &mut Caller<'_, JobState<'_>>, bytes: usize) -> Result<(), wasmi::Error> {
    let cost = HOST_CALL_FUEL + bytes as u64 / 64;
    let fuel = caller.get_fuel()?;
    if fuel < cost {
        caller.set_fuel(0)?;
        return Err(TrapCode::OutOfFuel.into());
    }
    caller.set_fuel(fuel - cost)
}

fn memory_of(caller: &Caller<'_, JobState<'_>>) -> Result<wasmi::Memory, wasmi::Error> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(TrapCode::MemoryOutOfBounds.into()),
    }
}

/// Runs `module` on `input` within `limits`.
pub fn run(module: &[u8], input: &[u8], limits: Limits) -> JobResult {
    let invalid = JobResult {
        outcome: Outcome::InvalidModule,
        fuel_used: 0,
        output: Vec::new(),
    };
    let engine = engine();
    let Ok(module) = Module::new(&engine, module) else {
        return invalid;
    };
    let state = JobState {
        input,
        output: Vec::new(),
        max_output: limits.max_output,
        limits: StoreLimitsBuilder::new()
            .memory_size(limits.max_memory)
            .memories(1)
            .tables(1)
            .instances(1)
            .trap_on_grow_failure(true)
            .build(),
    };
    let mut store = Store::new(&engine, state);
    store.limiter(|state| &mut state.limits);
    if store.set_fuel(limits.max_fuel).is_err() {
        return invalid;
    }
    let mut linker = Linker::new(&engine);
    let linked = linker
        .func_wrap("cairn", "input_len", |caller: Caller<'_, JobState<'_>>| {
            caller.data().input.len() as i64
        })
        .and_then(|l| {
            l.func_wrap(
                "cairn",
                "read_input",
                |mut caller: Caller<'_, JobState<'_>>,
                 offset: i64,
                 ptr: i32,
                 len: i32|
                 -> Result<i32, wasmi::Error> {
                    let input = caller.data().input;
                    let start = usize::try_from(offset)
                        .unwrap_or(usize::MAX)
                        .min(input.len());
                    let len = usize::try_from(len)
                        .map_err(|_| wasmi::Error::from(TrapCode::MemoryOutOfBounds))?;
                    let end = start.saturating_add(len).min(input.len());
                    charge(&mut caller, end - start)?;
                    let memory = memory_of(&caller)?;
                    let ptr = u32::try_from(ptr)
                        .map_err(|_| wasmi::Error::from(TrapCode::MemoryOutOfBounds))?;
                    memory
                        .write(&mut caller, ptr as usize, &input[start..end])
                        .map_err(|_| wasmi::Error::from(TrapCode::MemoryOutOfBounds))?;
                    Ok((end - start) as i32)
                },
            )
        })
        .and_then(|l| {
            l.func_wrap(
                "cairn",
                "write_output",
                |mut caller: Caller<'_, JobState<'_>>,
                 ptr: i32,
                 len: i32|
                 -> Result<(), wasmi::Error> {
                    let (ptr, len) = match (u32::try_from(ptr), u32::try_from(len)) {
                        (Ok(ptr), Ok(len)) => (ptr as usize, len as usize),
                        _ => return Err(TrapCode::MemoryOutOfBounds.into()),
                    };
                    charge(&mut caller, len)?;
                    let state = caller.data();
                    if state.output.len() + len > state.max_output {
                        return Err(TrapCode::UnreachableCodeReached.into());
                    }
                    let memory = memory_of(&caller)?;
                    let mut bytes = vec![0u8; len];
                    memory
                        .read(&caller, ptr, &mut bytes)
                        .map_err(|_| wasmi::Error::from(TrapCode::MemoryOutOfBounds))?;
                    caller.data_mut().output.extend_from_slice(&bytes);
                    Ok(())
                },
            )
        });
    if linked.is_err() {
        return invalid;
    }
    let Ok(instance) = linker.instantiate_and_start(&mut store, &module) else {
        return invalid;
    };
    let has_memory = matches!(
        instance.get_export(&store, "memory"),
        Some(Extern::Memory(_))
    );
    let Ok(entry) = instance.get_typed_func::<(), ()>(&store, "run") else {
        return invalid;
    };
    if !has_memory {
        return invalid;
    }
    let result = entry.call(&mut store, ());
    let remaining = store.get_fuel().unwrap_or(0);
    let fuel_used = limits.max_fuel - remaining.min(limits.max_fuel);
    match result {
        Ok(()) => JobResult {
            outcome: Outcome::Completed,
            fuel_used,
            output: store.into_data().output,
        },
        Err(error) if error.as_trap_code() == Some(TrapCode::OutOfFuel) => JobResult {
            outcome: Outcome::OutOfFuel,
            fuel_used: limits.max_fuel,
            output: Vec::new(),
        },
        Err(_) => JobResult {
            outcome: Outcome::Trapped,
            fuel_used,
            output: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> Vec<u8> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/jobs");
        let assembled = wat::parse_file(format!("{dir}/{name}.wat")).unwrap();
        let binary = format!("{dir}/{name}.wasm");
        if std::env::var_os("CAIRN_WRITE_EXAMPLES").is_some() {
            std::fs::write(&binary, &assembled).unwrap();
        }
        let committed = std::fs::read(&binary).unwrap();
        assert_eq!(
            committed, assembled,
            "examples/jobs/{name}.wasm is stale: CAIRN_WRITE_EXAMPLES=1 cargo test -p cairn-node example_jobs"
        );
        committed
    }

    fn wasm(text: &str) -> Vec<u8> {
        wat::parse_str(text).unwrap()
    }

    fn limits(max_fuel: u64) -> Limits {
        Limits {
            max_fuel,
            max_memory: 1 << 20,
            max_output: 1024,
        }
    }

    #[test]
    fn example_jobs_match_their_source_and_count_words() {
        let committed = example("wordcount");
        for (input, expected) in [
            (&b""[..], &b"0\n"[..]),
            (b"one", b"1\n"),
            (b"  two\twords \n", b"2\n"),
            (b"a\x0bb\x0cc\rd", b"4\n"),
        ] {
            let result = run(&committed, input, Limits::default());
            assert_eq!(result.outcome, Outcome::Completed);
            assert_eq!(result.output, expected, "{input:?}");
        }
        // Longer than one 32 KiB read, with a word across the boundary.
        let text = "lorem ipsum dolor ".repeat(5_000);
        let result = run(&committed, text.as_bytes(), Limits::default());
        assert_eq!(result.output, b"15000\n");
        let again = run(&committed, text.as_bytes(), Limits::default());
        assert_eq!(result, again, "a job is deterministic, fuel included");
        assert!(
            result.fuel_used > 90_000 * 5,
            "fuel is charged per instruction"
        );
        let starved = run(&committed, text.as_bytes(), limits(result.fuel_used - 1));
        assert_eq!(starved.outcome, Outcome::OutOfFuel);
        assert_eq!(starved.fuel_used, result.fuel_used - 1);
        assert!(starved.output.is_empty());

        let spin = run(&example("spin"), b"", limits(123_456));
        assert_eq!(spin.outcome, Outcome::OutOfFuel);
        assert_eq!(spin.fuel_used, 123_456);
    }

    #[test]
    fn every_bad_module_ends_in_a_recorded_outcome() {
        let memory = r#"(memory (export "memory") 1)"#;
        let cases = [
            ("not wasm".to_string(), Outcome::InvalidModule),
            (
                r#"(module (func (export "run")))"#.to_string(),
                Outcome::InvalidModule,
            ),
            (format!("(module {memory})"), Outcome::InvalidModule),
            (
                format!(r#"(module {memory} (func (export "run") (param i32)))"#),
                Outcome::InvalidModule,
            ),
            (
                format!(r#"(module (import "env" "clock" (func)) {memory} (func (export "run")))"#),
                Outcome::InvalidModule,
            ),
            (
                format!(
                    r#"(module {memory} (func (export "run") (drop (f32.add (f32.const 1) (f32.const 2)))))"#
                ),
                Outcome::InvalidModule,
            ),
            (
                format!(r#"(module {memory} (func $s) (start $s) (func (export "run")))"#),
                Outcome::InvalidModule,
            ),
            (
                r#"(module (memory (export "memory") 100) (func (export "run")))"#.to_string(),
                Outcome::InvalidModule,
            ),
            (
                format!(r#"(module {memory} (func (export "run") unreachable))"#),
                Outcome::Trapped,
            ),
            (
                format!(
                    r#"(module {memory} (func (export "run") (drop (i32.load (i32.const 70000)))))"#
                ),
                Outcome::Trapped,
            ),
            (
                format!(
                    r#"(module {memory} (func (export "run") (drop (memory.grow (i32.const 64)))))"#
                ),
                Outcome::Trapped,
            ),
            (
                format!(
                    r#"(module (import "cairn" "write_output" (func $w (param i32 i32))) {memory}
                        (func (export "run") (call $w (i32.const 0) (i32.const 2048))))"#
                ),
                Outcome::Trapped,
            ),
            (
                format!(
                    r#"(module (import "cairn" "read_input" (func $r (param i64 i32 i32) (result i32))) {memory}
                        (func (export "run") (drop (call $r (i64.const 0) (i32.const 65535) (i32.const 16)))))"#
                ),
                Outcome::Trapped,
            ),
            (
                format!(r#"(module {memory} (func (export "run") (loop $l (br $l))))"#),
                Outcome::OutOfFuel,
            ),
            (
                format!(r#"(module {memory} (func $f (call $f)) (func (export "run") (call $f)))"#),
                Outcome::Trapped,
            ),
        ];
        for (source, expected) in cases {
            let module = wat::parse_str(&source).unwrap_or_else(|_| source.clone().into_bytes());
            let result = run(&module, b"0123456789abcdef", limits(100_000));
            assert_eq!(result.outcome, expected, "{source}");
            assert!(result.output.is_empty());
            assert!(result.fuel_used <= 100_000);
        }
    }

    #[test]
    fn input_is_read_in_pieces_and_past_the_end_reads_nothing() {
        let module = wasm(
            r#"(module
                (import "cairn" "input_len" (func $len (result i64)))
                (import "cairn" "read_input" (func $r (param i64 i32 i32) (result i32)))
                (import "cairn" "write_output" (func $w (param i32 i32)))
                (memory (export "memory") 1)
                (func (export "run")
                  (i64.store (i32.const 0) (call $len))
                  (i32.store (i32.const 8) (call $r (i64.const 3) (i32.const 12) (i32.const 4)))
                  (i32.store (i32.const 16) (call $r (i64.const 99) (i32.const 20) (i32.const 4)))
                  (call $w (i32.const 0) (i32.const 20))))"#,
        );
        let result = run(&module, b"abcdefg", limits(100_000));
        assert_eq!(result.outcome, Outcome::Completed);
        let out = result.output;
        assert_eq!(u64::from_le_bytes(out[0..8].try_into().unwrap()), 7);
        assert_eq!(u32::from_le_bytes(out[8..12].try_into().unwrap()), 4);
        assert_eq!(&out[12..16], b"defg");
        assert_eq!(u32::from_le_bytes(out[16..20].try_into().unwrap()), 0);
        assert_eq!(Outcome::from_code(2), Some(Outcome::Trapped));
        assert_eq!(Outcome::from_code(4), Some(Outcome::InputUnavailable));
        assert_eq!(Outcome::from_code(5), None);
    }

    /// The digits job and its held-out split, as `scripts/build-jobs --train` wrote them.
    fn digits() -> (Vec<u8>, Vec<u8>) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/jobs");
        let module = std::fs::read(format!("{dir}/digits.wasm")).unwrap();
        let batch = std::fs::read(format!("{dir}/digits/heldout.bin")).unwrap();
        (module, batch)
    }

    #[test]
    fn the_digits_job_classifies_the_held_out_images_as_trained_and_the_same_everywhere() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/jobs/digits");
        let (module, batch) = digits();
        let result = run(&module, &batch, Limits::default());
        assert_eq!(result.outcome, Outcome::Completed);
        // The scores train.py computes with numpy's integers, byte for byte.
        let expected = std::fs::read(format!("{dir}/heldout-expected.txt")).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&result.output),
            String::from_utf8_lossy(&expected)
        );
        let labels = std::fs::read_to_string(format!("{dir}/heldout-labels.txt")).unwrap();
        let output = String::from_utf8(result.output.clone()).unwrap();
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len(), batch.len() / 64);
        let right = lines
            .iter()
            .zip(labels.lines())
            .filter(|(line, label)| line.split(' ').next() == Some(*label))
            .count();
        assert!(
            right * 100 >= lines.len() * 95,
            "{right} of {} right",
            lines.len()
        );
        // Another run, as a verifier's: the same output root and the same fuel.
        assert_eq!(run(&module, &batch, Limits::default()), result);
    }

    #[test]
    fn the_digits_job_answers_a_malformed_batch_with_one_error_line() {
        let (module, batch) = digits();
        let answer = |input: &[u8]| {
            let result = run(&module, input, Limits::default());
            assert_eq!(result.outcome, Outcome::Completed);
            String::from_utf8(result.output).unwrap()
        };
        assert_eq!(
            answer(&batch[..65]),
            "error: input is 65 bytes, not a whole number of 64-byte images (8x8 pixels, one byte each, 0-16)\n"
        );
        let mut bad_pixel = batch[..256].to_vec();
        bad_pixel[3 * 64 + 5] = 17;
        assert_eq!(
            answer(&bad_pixel),
            "error: image 3 pixel 5 is 17, pixels must be 0-16\n"
        );
        assert_eq!(answer(b""), "");
        // Too little fuel for the batch is an outcome, not a crash.
        let starved = run(&module, &batch, limits(10_000));
        assert_eq!(starved.outcome, Outcome::OutOfFuel);
    }
}
