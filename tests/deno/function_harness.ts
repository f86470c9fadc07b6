// Serves one generated edge function (Deno.serve, as the edge runtime does) against a stand-in for the project's
// Auth and PostgREST endpoints, and sends it the scenario's requests; prints one JSON line per request: its status,
// its answer and the REST calls the function made (with which key). Run from a rendered project's root by
// tests/test_edge_functions.py: `deno run ... function_harness.ts <function> <scenario JSON>`, the scenario being
// {tables: {name: rows}, requests: [{label, token, body, headers?}]}. Filters are read as PostgREST does
// (`col=eq.value`, `col=is.null`, `col=in.(a,b)`); a PATCH changes the rows they match. RLS, as far as a test needs
// it: a row carrying `_readers` (user ids) is shown to the caller's own client only when it lists them; the service
// key sees every row. Fields named `_...` are never shown.
type Row = Record<string, unknown>
type Scenario = {
  tables: Record<string, Row[]>
  requests: { label: string; token: string; body: Row; headers?: Record<string, string> }[]
}
type Call = { method: string; table: string; query: Record<string, string>; key: string; body?: unknown }

const [name, text] = Deno.args
const scenario: Scenario = JSON.parse(text)
const serve = Deno.serve.bind(Deno)
const ANON = "anon-key", SERVICE = "service-key"
let calls: Call[] = []

function answer(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } })
}

async function supabase(req: Request): Promise<Response> {
  const url = new URL(req.url)
  const bearer = (req.headers.get("Authorization") ?? "").replace(/^Bearer /, "")
  if (url.pathname === "/auth/v1/user") {
    if (req.headers.get("apikey") !== ANON || !/^[0-9a-f-]{36}$/.test(bearer)) return answer(401, { msg: "bad jwt" })
    return answer(200, {
      id: bearer, aud: "authenticated", role: "authenticated", email: `${bearer}@x.io`,
      app_metadata: {}, user_metadata: {}, created_at: "2026-01-01T00:00:00Z",
    })
  }
  const table = url.pathname.replace("/rest/v1/", "")
  const apikey = req.headers.get("apikey")
  const key = apikey === SERVICE && bearer === SERVICE ? "service" : apikey === ANON ? "caller" : "unknown"
  const query = Object.fromEntries(url.searchParams)
  if (req.method === "POST") {
    const body = await req.json()
    calls.push({ method: "POST", table, query, key, body })
    return answer(201, { id: "11111111-1111-4111-8111-111111111111" })
  }
  const body = req.method === "PATCH" ? await req.json() : undefined
  calls.push({ method: req.method, table, query, key, ...(body === undefined ? {} : { body }) })
  let rows = (scenario.tables[table] ?? []).filter((r) =>
    key === "service" || !Array.isArray(r._readers) || r._readers.includes(bearer)
  )
  for (const [column, filter] of url.searchParams) {
    if (["select", "limit", "order"].includes(column)) continue
    if (filter === "is.null") rows = rows.filter((r) => r[column] === null || r[column] === undefined)
    else if (filter.startsWith("eq.")) rows = rows.filter((r) => String(r[column]) === filter.slice(3))
    else if (filter.startsWith("in.(") && filter.endsWith(")")) {
      const values = filter.slice(4, -1).split(",").map((v) => v.replace(/^"(.*)"$/, "$1"))
      rows = rows.filter((r) => values.includes(String(r[column])))
    }
    else return answer(400, { code: "PGRST100", message: `unread filter ${filter}` })
  }
  if (body !== undefined) rows.forEach((r) => Object.assign(r, body))
  rows = rows.slice(0, Number(url.searchParams.get("limit") ?? rows.length))
  const picked = (url.searchParams.get("select") ?? "*").split(",")
  const shown = rows.map((r) =>
    picked[0] === "*"
      ? Object.fromEntries(Object.entries(r).filter(([c]) => !c.startsWith("_")))
      : Object.fromEntries(picked.map((c) => [c, r[c]]))
  )
  if ((req.headers.get("Accept") ?? "").includes("vnd.pgrst.object+json")) {
    return shown.length === 1 ? answer(200, shown[0]) : answer(406, {
      code: "PGRST116",
      message: "JSON object requested, multiple (or no) rows returned",
      details: `The result contains ${shown.length} rows`,
      hint: null,
    })
  }
  return answer(200, shown)
}

const backend = serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, supabase)
Deno.env.set("SUPABASE_URL", `http://127.0.0.1:${(backend.addr as Deno.NetAddr).port}`)
Deno.env.set("SUPABASE_ANON_KEY", ANON)
Deno.env.set("SUPABASE_SERVICE_ROLE_KEY", SERVICE)

let served: (url: string, server: Deno.HttpServer) => void
const ready = new Promise<[string, Deno.HttpServer]>((resolve) => served = (u, s) => resolve([u, s]))
// deno-lint-ignore no-explicit-any
;(Deno as any).serve = (handler: Deno.ServeHandler) => {
  const server: Deno.HttpServer = serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, handler)
  served(`http://127.0.0.1:${(server.addr as Deno.NetAddr).port}`, server)
  return server
}
await import(`${Deno.cwd()}/supabase/functions/${name}/index.ts`)
const [url, server] = await ready
for (const { label, token, body, headers } of scenario.requests) {
  calls = []
  const res = await fetch(url, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  })
  console.log(JSON.stringify({ label, status: res.status, body: await res.json(), calls }))
}
await server.shutdown()
await backend.shutdown()
