;; Word count: a Cairn compute job. It reads its input 32 KiB at a time, counts the words (runs
;; of bytes that are not ASCII whitespace) and writes the count in decimal with a newline, like
;; `wc -w`. The runner links only the three `cairn` host functions below.
;;
;; The committed wordcount.wasm is this file assembled; the node's tests check that they match
;; (CAIRN_WRITE_EXAMPLES=1 cargo test -p cairn-node example_jobs rewrites it).
(module
  (import "cairn" "read_input" (func $read_input (param i64 i32 i32) (result i32)))
  (import "cairn" "write_output" (func $write_output (param i32 i32)))
  (memory (export "memory") 1)

  ;; Memory: bytes 0..32 hold the digits, 1024..33792 the input buffer.
  (func (export "run")
    (local $offset i64) (local $read i32) (local $i i32) (local $byte i32)
    (local $in_word i32) (local $words i64) (local $at i32)
    (block $end
      (loop $chunks
        (local.set $read (call $read_input (local.get $offset) (i32.const 1024) (i32.const 32768)))
        (br_if $end (i32.eqz (local.get $read)))
        (local.set $offset (i64.add (local.get $offset) (i64.extend_i32_u (local.get $read))))
        (local.set $i (i32.const 0))
        (loop $bytes
          (local.set $byte (i32.load8_u (i32.add (i32.const 1024) (local.get $i))))
          ;; Whitespace: space, or \t \n \v \f \r (9 to 13).
          (if (i32.or (i32.eq (local.get $byte) (i32.const 32))
                      (i32.lt_u (i32.sub (local.get $byte) (i32.const 9)) (i32.const 5)))
            (then (local.set $in_word (i32.const 0)))
            (else
              (if (i32.eqz (local.get $in_word))
                (then (local.set $words (i64.add (local.get $words) (i64.const 1)))))
              (local.set $in_word (i32.const 1))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $bytes (i32.lt_u (local.get $i) (local.get $read))))
        (br $chunks)))
    ;; The digits end at byte 31 with a newline, written from the last digit backwards.
    (i32.store8 (i32.const 31) (i32.const 10))
    (local.set $at (i32.const 31))
    (loop $digits
      (local.set $at (i32.sub (local.get $at) (i32.const 1)))
      (i32.store8 (local.get $at)
        (i32.add (i32.const 48) (i32.wrap_i64 (i64.rem_u (local.get $words) (i64.const 10)))))
      (local.set $words (i64.div_u (local.get $words) (i64.const 10)))
      (br_if $digits (i64.ne (local.get $words) (i64.const 0))))
    (call $write_output (local.get $at) (i32.sub (i32.const 32) (local.get $at)))))
