// Parses Mermaid files with mermaid's own parser; prints, per file, one JSON line with the ER diagram it read
// or {"error": ...}.
// mermaid needs a DOM (DOMPurify) even to parse: jsdom provides one, headless.
import { JSDOM } from "jsdom";
import { readFileSync } from "node:fs";

const dom = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });

for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, "utf8");
  try {
    const parsed = await mermaid.parse(text);
    const db = (await mermaid.mermaidAPI.getDiagramFromText(text)).db;
    const names = new Map([...db.getEntities()].map(([name, e]) => [e.id, name]));
    const relationships = db.getRelationships().map((r) => [names.get(r.entityA), names.get(r.entityB), r.roleA]);
    console.log(JSON.stringify({ type: parsed.diagramType, entities: [...db.getEntities().keys()], relationships }));
  } catch (e) {
    console.log(JSON.stringify({ error: String(e.message || e) }));
  }
}
