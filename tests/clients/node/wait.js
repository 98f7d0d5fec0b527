// Waits until a child process prints a line matching `pattern` (its first group is the
// result), failing on timeout or exit. No dependencies: tests/dashboard imports it too.
export function waitFor(child, pattern, timeoutMs = 15000) {
  return new Promise((ok, fail) => {
    let text = "";
    const timer = setTimeout(() => fail(new Error(`timed out waiting for ${pattern}:\n${text}`)), timeoutMs);
    const onData = (chunk) => {
      text += chunk.toString();
      const m = text.match(pattern);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`${child.spawnfile} exited with ${code}:\n${text}`));
    });
  });
}
