/**
 * `containerd.task.v2.DeleteResponse` encoded by hand: the `delete` command runs on
 * every task removal (containerd waits for it), and loading the protobuf runtime would
 * cost it more than the rest of its work. Fields: pid=1, exit_status=2 (uint32),
 * exited_at=3 (google.protobuf.Timestamp: seconds=1 int64, nanos=2 int32).
 */

function varint(value: bigint): number[] {
  const out: number[] = [];
  let v = BigInt.asUintN(64, value);
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

function field(number: number, value: bigint): number[] {
  return value === 0n ? [] : [number << 3, ...varint(value)];
}

export function encodeDeleteResponse(pid: number, exitStatus: number, exitedAtNanos: bigint): Uint8Array {
  const seconds = exitedAtNanos / 1_000_000_000n;
  const nanos = exitedAtNanos % 1_000_000_000n;
  const timestamp = [...field(1, seconds), ...field(2, nanos)];
  return Uint8Array.from([
    ...field(1, BigInt(pid)),
    ...field(2, BigInt(exitStatus)),
    (3 << 3) | 2, // length-delimited
    ...varint(BigInt(timestamp.length)),
    ...timestamp,
  ]);
}
