// `deno test` of a rendered supabase/functions/log-event/validate.ts, copied next to it as validate_test.ts
// (tests/test_edge_functions.py). The cases hold for every blueprint; blueprint-specific facts are read from
// the module's constants, which the Python tests compare with the blueprint.
import { deepStrictEqual, equal, ok } from "node:assert/strict"
import {
  BODY_FIELDS,
  EVENTS,
  MAX_DEPTH,
  MAX_PROPERTIES_BYTES,
  MAX_PROPERTY_KEYS,
  PII_KEYS,
  validateEvent,
} from "./validate.ts"

const ORG = "8e3c4a52-5f2b-4d7e-9a61-0c2b7f1d9e44"
const SESSION = "0f9a1b2c-3d4e-4f5a-8b6c-7d8e9f0a1b2c"

function body(fields: Record<string, unknown>): Record<string, unknown> {
  return { organization_id: ORG, event_name: "user_logged_in", ...fields }
}

function refused(input: unknown, field: string): void {
  const checked = validateEvent(input)
  if (checked.ok) ok(false, `accepted ${JSON.stringify(input)?.slice(0, 200)}`)
  else equal(checked.field, field, checked.message)
}

Deno.test("a core taxonomy event is accepted, its category taken from the taxonomy", () => {
  const checked = validateEvent(body({ properties: { plan: "pro", step: 2, tags: ["a", "b"] } }))
  ok(checked.ok, JSON.stringify(checked))
  if (checked.ok) {
    deepStrictEqual(checked.event, {
      organization_id: ORG,
      event_name: "user_logged_in",
      event_category: "auth",
      properties: { plan: "pro", step: 2, tags: ["a", "b"] },
      session_id: null,
    })
  }
})

Deno.test("properties may be left out", () => {
  const checked = validateEvent(body({}))
  ok(checked.ok && Object.keys(checked.event.properties).length === 0)
})

Deno.test("every taxonomy event clients may record is accepted with its declared properties", () => {
  ok(EVENTS.size > 0)
  for (const [name, rule] of EVENTS) {
    if (rule.server) continue
    const properties = Object.fromEntries(rule.properties.map((k) => [k, "x"]))
    const checked = validateEvent(body({ event_name: name, properties }))
    ok(checked.ok, `${name}: ${JSON.stringify(checked)}`)
    if (checked.ok) equal(checked.event.event_category, rule.category)
  }
})

Deno.test("events only the backend records are refused (a payment, a signup)", () => {
  const server = [...EVENTS].filter(([, rule]) => rule.server)
  ok(server.some(([name]) => name === "checkout_completed"))
  for (const [name, rule] of server) {
    refused(body({ event_name: name, properties: Object.fromEntries(rule.properties.map((k) => [k, "x"])) }),
      "event_name")
  }
})

Deno.test("names outside the taxonomy are refused", () => {
  for (const name of ["made_up_event", "constructor", "__proto__", "toString", "User_Signed_Up", "", 42, null]) {
    refused(body({ event_name: name }), "event_name")
  }
})

Deno.test("an event declaring properties takes only those keys", () => {
  const declaring = [...EVENTS].find(([, rule]) => rule.properties.length > 0)
  if (declaring === undefined) return // this blueprint declares none
  const [name, rule] = declaring
  refused(body({ event_name: name, properties: { [rule.properties[0]]: 1, colour: "red" } }), "properties.colour")
})

Deno.test("personal-data keys are refused, at any depth", () => {
  for (const key of ["email", "phone", "password", "ssn", "address", "ip", "token", "name"]) {
    ok(PII_KEYS.has(key), key)
    refused(body({ properties: { [key]: "x" } }), `properties.${key}`)
  }
  for (const key of PII_KEYS) refused(body({ properties: { [key]: "x" } }), `properties.${key}`)
  refused(body({ properties: { user_email: "a@example.com" } }), "properties.user_email")
  refused(body({ properties: { client_ip_address: "10.0.0.1" } }), "properties.client_ip_address")
  refused(body({ properties: { context: { invitee: { email: "a@example.com" } } } }), "properties.context.invitee.email")
  refused(body({ properties: { people: [{ ok: 1 }, { phone: "555" }] } }), "properties.people[1].phone")
  // Red team 31 F10: `_` and `-` anywhere, words and stems the lists lacked.
  for (const key of ["e_mail", "E-Mail", "phoneNumber", "first-name", "emailAddress", "user_mail", "home_street"]) {
    refused(body({ properties: { context: { [key]: "x" } } }), `properties.context.${key}`)
  }
  ok(validateEvent(body({ properties: { emails_sent: 3, mobile_app: "ios", plan: { tier: "pro" } } })).ok)
})

Deno.test("properties that are not a JSON object are refused", () => {
  for (const properties of [[], ["a"], "text", 3, true]) refused(body({ properties }), "properties")
})

Deno.test("oversize, crowded or deeply nested properties are refused", () => {
  refused(body({ properties: { blob: "x".repeat(MAX_PROPERTIES_BYTES) } }), "properties")
  refused(body({ properties: { blob: "é".repeat(MAX_PROPERTIES_BYTES / 2) } }), "properties") // bytes, not characters
  ok(validateEvent(body({ properties: { blob: "x".repeat(MAX_PROPERTIES_BYTES - 20) } })).ok)
  const crowded = Object.fromEntries(Array.from({ length: MAX_PROPERTY_KEYS + 1 }, (_, i) => [`key_${i}`, i]))
  refused(body({ properties: crowded }), "properties")
  refused(body({ properties: { nested: crowded } }), "properties") // the cap counts keys at every depth
  let deep: unknown = { leaf: 1 }
  for (let i = 0; i < MAX_DEPTH; i++) deep = { level: deep }
  ok(validateEvent(body({ properties: deep })).ok, `${MAX_DEPTH} levels are allowed`)
  refused(body({ properties: { level: deep } }), "properties" + ".level".repeat(MAX_DEPTH + 1))
})

Deno.test("nesting far past the limit and NUL characters are refused, not thrown (red team 31 F8, F9)", () => {
  let deep: unknown = 1
  for (let i = 0; i < 20000; i++) deep = [deep]
  refused(body({ properties: { list: deep } }), "properties.list" + "[0]".repeat(MAX_DEPTH))
  refused(body({ properties: { note: "a\u0000b" } }), "properties.note")
  refused(body({ properties: { context: { ["k\u0000"]: 1 } } }), "properties.context.k\u0000")
})

Deno.test("keys nobody declared are snake_case", () => {
  refused(body({ properties: { "Screen Name": "x" } }), "properties.Screen Name")
})

Deno.test("the body is an object of known fields with a UUID organisation", () => {
  for (const input of [null, [], "text", 1]) refused(input, "body")
  refused(body({ extra: 1 }), "extra")
  refused(body({ organization_id: "not-a-uuid" }), "organization_id")
  refused({ event_name: "user_signed_up" }, "organization_id")
})

Deno.test("a session, when the blueprint has sessions, is a UUID", () => {
  if (!(BODY_FIELDS as readonly string[]).includes("session_id")) {
    refused(body({ session_id: SESSION }), "session_id")
    return
  }
  refused(body({ session_id: "42" }), "session_id")
  const checked = validateEvent(body({ session_id: SESSION }))
  ok(checked.ok && checked.event.session_id === SESSION)
})
