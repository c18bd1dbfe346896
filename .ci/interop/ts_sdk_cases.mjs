// Drive tunnelgate with the official TypeScript MCP SDK (npm `@modelcontextprotocol/sdk`, 1.x).
//
// Cases (each independent, reported separately):
//   ts-http            StreamableHTTPClientTransport, the Access header in requestInit.headers
//   ts-sse             SSEClientTransport (legacy HTTP+SSE), the header in requestInit.headers,
//                      which 1.32.x applies to the stream's GET too (sse.js, _commonHeaders), so
//                      no eventSourceInit/fetch override is needed for it
//   ts-*-wrong-aud     the same with a token minted for another audience: connect() must fail
//                      with the server's 403, and the client's error must carry that status
//
// Each positive case connects (initialize), lists tools, calls whoami and books_list and checks
// the answers. A recording fetch (it only observes; it adds no header) shows which requests
// carried the header, the MCP-Protocol-Version the client sent after the handshake, and the
// status and body of every refusal.
//
// The transports are built exactly as docs/clients.md shows them (plus that recording fetch).
// run.sh copies this file next to the pinned node_modules (.cache/interop/npm) and runs it with
// the pinned Node: node ts_sdk_cases.mjs --info INFO_JSON --results OUT_JSON

import { readFileSync, writeFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const HEADER = "Cf-Access-Jwt-Assertion";
const EXPECTED_EMAIL = "dev@localhost";
const OTHER_AUDIENCE = "interop-some-other-application-aud";
const CASE_TIMEOUT_MS = 60_000;

// The SDK's `exports` do not include package.json; read it from node_modules beside this file.
const SDK_VERSION = JSON.parse(readFileSync(new URL("./node_modules/@modelcontextprotocol/sdk/package.json", import.meta.url), "utf8")).version;
const CLIENT = `typescript sdk ${SDK_VERSION}`;

class CheckFailed extends Error {}
function check(cond, msg) {
  if (!cond) throw new CheckFailed(msg);
}

function argValue(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

// ------------------------------------------------------------------ recording fetch

function recorder() {
  const exchanges = [];
  const fetchImpl = async (url, init = {}) => {
    const headers = new Headers(init.headers);
    let rpc = null;
    if (typeof init.body === "string") {
      try {
        rpc = JSON.parse(init.body).method ?? null;
      } catch {
        rpc = null;
      }
    }
    const ex = {
      method: init.method ?? "GET",
      path: new URL(url).pathname,
      rpc,
      token: headers.get(HEADER),
      protocol: headers.get("mcp-protocol-version"),
      status: null,
      body: null,
    };
    exchanges.push(ex);
    const response = await fetch(url, init);
    ex.status = response.status;
    if (response.status >= 400) ex.body = await response.clone().text();
    return response;
  };
  const summary = () => exchanges.map((e) => `${e.method} ${e.path}${e.rpc ? `[${e.rpc}]` : ""} -> ${e.status}`).join("; ");
  return { exchanges, fetchImpl, summary };
}

// ------------------------------------------------------------------ the transports, as documented

function streamableTransport(url, token, fetchImpl) {
  return new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { [HEADER]: token } },
    fetch: fetchImpl,
  });
}

function sseTransport(url, token, fetchImpl) {
  return new SSEClientTransport(new URL(url), {
    requestInit: { headers: { [HEADER]: token } },
    fetch: fetchImpl,
  });
}

// ------------------------------------------------------------------ helpers

async function mintToken(info, aud) {
  const url = new URL(info.token_url);
  url.searchParams.set("email", EXPECTED_EMAIL);
  url.searchParams.set("aud", aud);
  const response = await fetch(url);
  const text = (await response.text()).trim();
  check(response.status === 200, `token_url answered ${response.status}: ${text.slice(0, 200)}`);
  const token = text.startsWith("{") ? JSON.parse(text).token : text.replace(/^"|"$/g, "");
  check(token && token.split(".").length === 3, `token_url did not return a JWT: ${text.slice(0, 200)}`);
  const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
  const auds = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  check(auds.includes(aud) && !auds.includes(info.audience), `minted token has aud ${auds}`);
  return token;
}

// The tool's answer as JSON, from its text content (tunnelgate puts the JSON there as well as
// in structuredContent; the stand-in server only there).
function answer(result, tool) {
  check(!result.isError, `${tool} returned isError: ${JSON.stringify(result.content).slice(0, 300)}`);
  const text = (result.content ?? []).find((c) => c.type === "text")?.text;
  check(text, `${tool} returned no text content: ${JSON.stringify(result).slice(0, 300)}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new CheckFailed(`${tool}'s text content is not JSON: ${text.slice(0, 200)}`);
  }
}

async function exercise(client, rec, token) {
  const tools = [];
  let cursor;
  for (let page = 0; page < 50; page++) {
    const listed = await client.listTools(cursor ? { cursor } : undefined);
    tools.push(...listed.tools);
    cursor = listed.nextCursor;
    if (!cursor) break;
  }
  const names = tools.map((t) => t.name);
  check(names.includes("whoami"), `tools/list has no whoami: ${names}`);
  check(names.includes("books_list"), `tools/list has no books_list: ${names}`);

  const identity = answer(await client.callTool({ name: "whoami", arguments: {} }), "whoami");
  check(identity.email === EXPECTED_EMAIL, `whoami email is ${identity.email}, expected ${EXPECTED_EMAIL}`);

  const page = answer(await client.callTool({ name: "books_list", arguments: { limit: 2 } }), "books_list");
  check(Array.isArray(page.items) && page.items.length === 2, `books_list limit=2 returned ${JSON.stringify(page).slice(0, 200)}`);
  check(page.items[0].id === "bk_1", `books_list's first book is ${page.items[0].id}, expected bk_1`);

  check(rec.exchanges.length > 0, "no HTTP exchange was recorded");
  for (const ex of rec.exchanges) {
    check(ex.token === token, `${ex.method} ${ex.path} went out without the ${HEADER} header`);
  }
  const bad = rec.exchanges.filter((e) => e.status >= 400 && e.status !== 405);
  check(bad.length === 0, `HTTP errors in a positive case: ${rec.summary()}`);
  const after = rec.exchanges.filter((e) => e.rpc === "tools/list" || e.rpc === "tools/call");
  const protocols = [...new Set(after.map((e) => e.protocol))];
  check(protocols.length === 1 && protocols[0], `MCP-Protocol-Version after the handshake: ${protocols}`);
  return {
    protocol: protocols[0],
    detail: `${names.length} tools; whoami email=${identity.email}; books_list limit=2 -> ${page.items.map((b) => b.id).join(",")}`,
  };
}

async function positive(make, url, info) {
  const rec = recorder();
  const client = new Client({ name: "tunnelgate-interop", version: "1.0.0" });
  const transport = make(url, info.token, rec.fetchImpl);
  try {
    await client.connect(transport);
    const server = client.getServerVersion();
    check(server?.name === "tunnelgate" || server?.name === "tunnelgate-standin", `serverInfo.name is ${server?.name}`);
    const { protocol, detail } = await exercise(client, rec, info.token);
    return { protocol, detail: `server ${server.name}; ${detail}`, rec };
  } finally {
    await client.close().catch(() => {});
  }
}

async function negative(make, url, info, ctx) {
  ctx.wrong ??= await mintToken(info, OTHER_AUDIENCE);
  const rec = recorder();
  const client = new Client({ name: "tunnelgate-interop", version: "1.0.0" });
  let error = null;
  try {
    await client.connect(make(url, ctx.wrong, rec.fetchImpl));
    await client.listTools();
  } catch (e) {
    error = e;
  } finally {
    await client.close().catch(() => {});
  }
  check(error, `the client connected with a wrong-audience token: ${rec.summary()}`);
  check(rec.exchanges.length > 0, `no request was made; the client failed with ${error}`);
  for (const ex of rec.exchanges) check(ex.token === ctx.wrong, `${ex.method} ${ex.path} did not carry the wrong-audience token`);
  check(rec.exchanges.every((e) => e.status === 403), `non-403 answers: ${rec.summary()}`);
  for (const ex of rec.exchanges) {
    let body;
    try {
      body = JSON.parse(ex.body);
    } catch {
      throw new CheckFailed(`403 body is not JSON: ${ex.body}`);
    }
    check(body.error === "access_denied" && body.reason === "wrong_audience", `403 body: ${ex.body}`);
  }
  const code = error.code ?? error.status;
  check(code === 403, `the client's error carries ${code}, not 403: ${error.constructor.name}: ${error.message}`);
  return { protocol: "-", detail: `${rec.summary()} ${rec.exchanges[0].body}; client threw ${error.constructor.name}(${code}): ${error.message.slice(0, 120)}`, rec };
}

// ------------------------------------------------------------------ main

const CASES = {
  "ts-http": { transport: "streamable-http", run: (info) => positive(streamableTransport, info.mcp_url, info) },
  "ts-sse": { transport: "sse", run: (info) => positive(sseTransport, info.sse_url, info) },
  "ts-http-wrong-aud": { transport: "streamable-http", run: (info, ctx) => negative(streamableTransport, info.mcp_url, info, ctx) },
  "ts-sse-wrong-aud": { transport: "sse", run: (info, ctx) => negative(sseTransport, info.sse_url, info, ctx) },
};

async function main() {
  const info = JSON.parse(readFileSync(argValue("--info"), "utf8"));
  const resultsPath = argValue("--results");
  const results = [];
  const ctx = {};
  for (const [name, { transport, run }] of Object.entries(CASES)) {
    const started = performance.now();
    let ok = false;
    let detail;
    let protocol = "-";
    try {
      const outcome = await Promise.race([
        run(info, ctx),
        new Promise((_, reject) => setTimeout(() => reject(new CheckFailed(`no result within ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS).unref()),
      ]);
      ok = true;
      detail = outcome.detail;
      protocol = outcome.protocol;
    } catch (e) {
      detail = e instanceof CheckFailed ? e.message : `${e?.constructor?.name}: ${e?.message ?? e}`;
    }
    const seconds = Math.round((performance.now() - started) / 10) / 100;
    results.push({ case: name, client: CLIENT, transport, protocol, ok, seconds, detail });
    console.log(`[${ok ? "PASS" : "FAIL"}] ${name} (${seconds.toFixed(1)}s): ${detail}`);
  }
  if (resultsPath) writeFileSync(resultsPath, JSON.stringify(results, null, 2));
  process.exit(results.every((r) => r.ok) ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
