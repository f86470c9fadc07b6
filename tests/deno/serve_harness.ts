// Serves each generated edge function named in the arguments on a free loopback port (Deno.serve, as the
// edge runtime does) and sends it the requests that never need the database; prints one JSON line per
// answer. Run from a rendered project's root by tests/test_edge_functions.py.
type Served = { url: string; server: Deno.HttpServer }

const pending: ((served: Served) => void)[] = []
const serve = Deno.serve.bind(Deno)
// deno-lint-ignore no-explicit-any
;(Deno as any).serve = (handler: Deno.ServeHandler) => {
  const resolve = pending.shift()!
  const server: Deno.HttpServer = serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, handler)
  resolve({ url: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`, server })
  return server
}

const requests: [string, RequestInit][] = [
  ["preflight", { method: "OPTIONS", headers: { Origin: "https://app.example.com" } }],
  ["preflight from elsewhere", { method: "OPTIONS", headers: { Origin: "https://evil.example.net" } }],
  ["get", { method: "GET" }],
  ["post without a token", { method: "POST", body: "{}" }],
  ["post with basic auth", { method: "POST", body: "{}", headers: { Authorization: "Basic YTpi" } }],
  ["post while auth is unreachable", { method: "POST", body: "{}", headers: { Authorization: "Bearer a.b.c" } }],
]

for (const name of Deno.args) {
  const served = new Promise<Served>((resolve) => pending.push(resolve))
  await import(`${Deno.cwd()}/supabase/functions/${name}/index.ts`)
  const { url, server } = await served
  for (const [label, init] of requests) {
    const res = await fetch(url, init)
    const headers = Object.fromEntries(res.headers)
    console.log(JSON.stringify({ function: name, label, status: res.status, headers, body: await res.text() }))
  }
  await server.shutdown()
}
