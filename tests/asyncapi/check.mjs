// Parses an AsyncAPI document (the file named by the first argument) with the AsyncAPI
// project's parser and prints what it found as JSON: validity, errors, warnings, the
// channels' addresses and the number of messages.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(process.argv[2], "utf8"));
const errors = diagnostics.filter((d) => d.severity === 0);
const described = (d) => `${d.path.join(".")}: ${d.message}`;
console.log(
  JSON.stringify({
    valid: document !== undefined && errors.length === 0,
    errors: errors.map(described),
    warnings: diagnostics.filter((d) => d.severity === 1).map(described),
    channels: document ? document.channels().all().map((c) => c.address()) : [],
    messages: document ? document.allMessages().all().length : 0,
  }),
);
