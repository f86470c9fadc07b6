// Serves one generated edge function (Deno.serve, as the edge runtime does) behind a stand-in Auth that
// accepts any token, and sends it bodies without a Content-Length (chunked): one far over the cap, streamed
// while counting what the function pulled, and small ones it must read whole. Prints one JSON line per answer.
// Run from a rendered project's root by tests/test_edge_functions.py.
const user = { id: "00000000-0000-4000-8000-000000000001", aud: "authenticated", role: "authenticated",
  email: "a@example.com", app_metadata: {}, user_metadata: {}, created_at: "2025-01-01T00:00:00Z" }
const auth = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, () => Response.json(user))
Deno.env.set("SUPABASE_URL", `http://127.0.0.1:${(auth.addr as Deno.NetAddr).port}`)

let url = ""
const serve = Deno.serve.bind(Deno)
// deno-lint-ignore no-explicit-any
;(Deno as any).serve = (handler: Deno.ServeHandler) => {
  const server = serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, handler)
  url = `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`
  return server
}
await import(`${Deno.cwd()}/supabase/functions/${Deno.args[0]}/index.ts`)

function chunked(total: number, chunk: Uint8Array): { body: ReadableStream<Uint8Array>; pulled: () => number } {
  let sent = 0
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= total) return controller.close()
      sent += chunk.length
      controller.enqueue(chunk)
    },
  })
  return { body, pulled: () => sent }
}

const headers = { Authorization: "Bearer a.b.c", "Content-Type": "application/json" }
const cases: [string, number, Uint8Array][] = [
  ["50 MB streamed", 50 * 1024 * 1024, new Uint8Array(65_536).fill(32)],
  ["an object in small chunks", 0, new TextEncoder().encode("{}")],
  ["16 KB of spaces then nothing", 16_384, new Uint8Array(1_024).fill(32)],
]
for (const [label, total, chunk] of cases) {
  const { body, pulled } = chunked(total || chunk.length, chunk)
  // deno-lint-ignore no-explicit-any
  const res = await fetch(url, { method: "POST", headers, body, duplex: "half" } as any)
  console.log(JSON.stringify({ label, status: res.status, body: await res.json(), pulled: pulled() }))
}
Deno.exit(0)
