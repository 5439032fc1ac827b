;; Spin: a Cairn compute job that never stops. It steps a 64-bit linear congruential generator
;; forever, so it always ends out of fuel, having used exactly its fuel limit. `cairn bench
;; compute` runs it to measure the runner's fuel per second; the tests run it to show that
;; running out of fuel is settled like any other outcome.
;;
;; The committed spin.wasm is this file assembled (checked by the node's tests).
(module
  (memory (export "memory") 1)
  (func (export "run")
    (local $state i64)
    (loop $step
      (local.set $state
        (i64.add (i64.mul (local.get $state) (i64.const 6364136223846793005))
                 (i64.const 1442695040888963407)))
      (br $step))))
