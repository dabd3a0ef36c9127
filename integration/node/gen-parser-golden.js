#!/usr/bin/env node
// Prints golden vectors for the Go package github.com/ioswarm/ioswarm/parser,
// produced by the reference npm socket.io-parser. Usage (from the repo root):
//
//   node integration/node/gen-parser-golden.js > parser/testdata/golden.json
//
// Output: {"generator", "parser", "encode": [...], "decode": [...]}.
//
// encode[i] = {name, goEncode, packet: {type, nsp, id?, data?}, encoded: [text, base64...]}
//   packet.data describes the JS value handed to Encoder#encode as plain JSON
//   with markers: {"$bin": "<base64>"} is a Buffer (or another binary view),
//   {"$num": "-0" | "NaN" | "Infinity" | "-Infinity"} a number JSON cannot
//   hold. encoded[0] is the text packet, encoded[1..] the attachments in
//   base64. goEncode is false when Go cannot build the same value (object
//   key order other than sorted order), so only decoding is checked.
//
// decode[i] = {input, ok, packet?: {type, nsp, id?, attachments?, data?}, reassembled?, error?}
//   the outcome of Decoder#decodeString(input) for a text packet; for a binary
//   packet announcing attachments, reassembled tells whether Decoder#add then
//   accepted that many attachments (placeholders are only checked then).
"use strict";

const { Encoder, Decoder } = require("socket.io-parser");
const path = require("path");
const fs = require("fs");
const parserVersion = JSON.parse(
  fs.readFileSync(path.join(__dirname, "node_modules", "socket.io-parser", "package.json"), "utf8"),
).version;

const bin = (...bytes) => Buffer.from(bytes);

function isBinary(v) {
  return (
    Buffer.isBuffer(v) ||
    v instanceof ArrayBuffer ||
    ArrayBuffer.isView(v)
  );
}

function toBase64(v) {
  if (v instanceof ArrayBuffer) return Buffer.from(v).toString("base64");
  if (ArrayBuffer.isView(v)) {
    return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");
  }
  return v.toString("base64");
}

// describe turns a JS value into its JSON description (see above).
function describe(v) {
  if (isBinary(v)) return { $bin: toBase64(v) };
  if (typeof v === "number") {
    if (Object.is(v, -0)) return { $num: "-0" };
    if (Number.isNaN(v)) return { $num: "NaN" };
    if (v === Infinity) return { $num: "Infinity" };
    if (v === -Infinity) return { $num: "-Infinity" };
    return v;
  }
  if (Array.isArray(v)) return v.map(describe);
  if (v !== null && typeof v === "object") {
    const out = {};
    for (const k of Object.keys(v)) out[k] = describe(v[k]);
    return out;
  }
  return v;
}

// sorted rebuilds plain objects with their keys in sorted order, the order
// in which Go writes map keys. (Keys here avoid integer-like names, which
// JavaScript always puts first.)
function sorted(v) {
  if (isBinary(v) || v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(sorted);
  const out = {};
  for (const k of Object.keys(v).sort()) out[k] = sorted(v[k]);
  return out;
}

const EVENT = 2, ACK = 3;

// [name, packet, goEncode?]
const cases = [
  ["connect root", { type: 0, nsp: "/" }],
  ["connect namespace", { type: 0, nsp: "/admin" }],
  ["connect with auth", { type: 0, nsp: "/admin", data: { token: "123" } }],
  ["connect reply", { type: 0, nsp: "/", data: { sid: "wZX3oN0bSVIhsaknAAAI" } }],
  ["connect reply namespace", { type: 0, nsp: "/admin", data: { sid: "oSO0OpakMV_3jnilAAAA" } }],
  ["connect reply with pid", { type: 0, nsp: "/", data: { pid: "y2Vwt5kvVKjFAbKzAAAB", sid: "wZX3oN0bSVIhsaknAAAI" } }],
  ["disconnect root", { type: 1, nsp: "/" }],
  ["disconnect namespace", { type: 1, nsp: "/admin" }],
  ["event", { type: EVENT, nsp: "/", data: ["foo"] }],
  ["event namespace", { type: EVENT, nsp: "/admin", data: ["bar"] }],
  ["event with ack id", { type: EVENT, nsp: "/", id: 12, data: ["foo"] }],
  ["event namespace ack id", { type: EVENT, nsp: "/admin", id: 13, data: ["x"] }],
  ["event ack id 0", { type: EVENT, nsp: "/", id: 0, data: ["zero"] }],
  ["event max safe ack id", { type: EVENT, nsp: "/", id: 9007199254740991, data: ["big"] }],
  ["event numeric name", { type: EVENT, nsp: "/", data: [42, "answer"] }],
  ["event compliance message", { type: EVENT, nsp: "/", data: ["message", 1, "2", { 3: [true] }] }],
  ["event nested values", { type: EVENT, nsp: "/chat", data: ["msg", { user: { id: 7, name: "alice", tags: ["a", "b"] }, empty: {}, list: [], nothing: null, yes: true, no: false }] }],
  ["event unicode namespace", { type: EVENT, nsp: "/ünïcødé", data: ["hé"] }],
  ["event strings", { type: EVENT, nsp: "/", data: ["strings", "", "plain", "héllo wörld", "日本語", "😀🎉", "quote\" backslash\\ slash/", "\n\r\t\b\f", "\u0000\u0001\u001f\u007f", "<script>&amp;</script>", "\u2028\u2029", "\ufeff", "a\u0085b"] }],
  ["event string keys", { type: EVENT, nsp: "/", data: ["keys", { "<k>&": 1, "a\"b": 2, "é": 3, "\n": 4, "": 5 }] }],
  ["event numbers", { type: EVENT, nsp: "/", data: ["numbers", 0, -0, 1, -1, 0.1, 1.5, -1.5, 1e21, -1e21, 1e20, 1e-6, 1e-7, 1.5e-7, 123e-20, 2 ** 53, 2 ** 53 + 2, -(2 ** 31), 2 ** 64, 5e-324, 1.7976931348623157e308, 1 / 3, 100, 1e300, 4.35, 0.1 + 0.2, 123456789012345680000, 9007199254740993] }],
  ["event non-finite numbers", { type: EVENT, nsp: "/", data: ["nonfinite", NaN, Infinity, -Infinity, [NaN], { x: -Infinity }] }],
  ["ack empty", { type: ACK, nsp: "/", id: 12, data: [] }],
  ["ack namespace", { type: ACK, nsp: "/admin", id: 13, data: ["bar"] }],
  ["ack values", { type: ACK, nsp: "/", id: 456, data: [1, "2", { 3: [false] }] }],
  ["connect error", { type: 4, nsp: "/", data: { message: "Not authorized" } }],
  ["connect error with data", { type: 4, nsp: "/admin", data: { data: { reason: "x" }, message: "not authorized" } }],
  ["connect error invalid namespace", { type: 4, nsp: "/random", data: { message: "Invalid namespace" } }],
  ["connect error string (v2)", { type: 4, nsp: "/admin", data: "nope" }],
  ["binary event", { type: EVENT, nsp: "/", data: ["baz", bin(1, 2, 3)] }],
  ["binary event namespace two attachments", { type: EVENT, nsp: "/admin", data: ["baz", bin(1), bin(2)] }],
  ["binary ack", { type: ACK, nsp: "/", id: 15, data: ["bar", bin(0xde, 0xad, 0xbe, 0xef)] }],
  ["binary ack only attachments", { type: ACK, nsp: "/", id: 789, data: [bin(1, 2, 3), bin(4, 5, 6)] }],
  ["binary event ack id and namespace", { type: EVENT, nsp: "/files", id: 7, data: ["upload", bin(255)] }],
  ["binary nested in object", { type: EVENT, nsp: "/", data: ["upload", { file: bin(1, 2), meta: { name: "a.bin", parts: [bin(3), bin(4, 5)] } }] }],
  ["binary nested in arrays", { type: EVENT, nsp: "/", data: ["nested", [[bin(1)], [bin(2), [bin(3)]]], "tail"] }],
  ["binary empty buffer", { type: EVENT, nsp: "/", data: ["empty", Buffer.alloc(0)] }],
  ["binary Uint8Array and ArrayBuffer", { type: EVENT, nsp: "/", data: ["views", new Uint8Array([9, 8, 7]), new Uint8Array([6, 5]).buffer] }],
  ["binary mixed with values", { type: EVENT, nsp: "/", data: ["mixed", 1, bin(10), "two", { a: bin(11), b: [null, true, 1.5] }, bin(12)] }],
  ["binary many attachments", { type: EVENT, nsp: "/", data: ["many", ...Array.from({ length: 10 }, (_, i) => bin(i))] }],
  // Only decoding is checked for these: Go maps cannot keep insertion order.
  ["object key insertion order", { type: EVENT, nsp: "/", data: ["order", { z: 1, a: 2, m: { y: 1, b: 2 } }] }, false],
  ["object integer-like keys", { type: EVENT, nsp: "/", data: ["intkeys", { b: 1, 10: 2, 2: 3, a: 4 }] }, false],
  ["binary object key order", { type: EVENT, nsp: "/", data: ["order", { z: bin(1), a: bin(2) }] }, false],
];

const encoder = new Encoder();
const encode = cases.map(([name, packet, goEncode = true]) => {
  const p = goEncode ? { ...packet, data: sorted(packet.data) } : packet;
  if (p.data === undefined) delete p.data;
  const desc = { type: p.type, nsp: p.nsp };
  if (p.id !== undefined) desc.id = p.id;
  if (p.data !== undefined) desc.data = describe(p.data);
  const out = encoder.encode(p).map((part) => (typeof part === "string" ? part : toBase64(part)));
  return { name, goEncode, packet: desc, encoded: out };
});

// Text packets for Decoder#decodeString, valid and invalid.
const placeholder = (n) => `{"_placeholder":true,"num":${n}}`;
const inputs = [
  "0", "0/admin,", "0/admin", "0{}", '0{"token":"123"}', '0/admin,{"token":"123"}',
  "0/random", "0/admin?x=1,", "0/,", "0/a,5{}", "05", "0 {}", '0{"a":1} ', "0\n{}",
  "0[]", '0"x"', "0null", "01", "0/admin,[]", "0{",
  "1", "1/admin,", "1/admin", "15", "1/admin,7", "1{}", "1[]", '1"x"', "1/admin,{}",
  '2["foo"]', '2/admin,["bar"]', '212["foo"]', '2/admin,13["x"]', '20["a"]', '2007["a"]',
  '2[42,"x"]', '2[-1.5e3]', '2["message",1,"2",{"3":[true]}]', '2 ["a"]', '2["a"] ', '2[ "a" ]',
  '2/,["a"]', '2/a/b,["a"]', '2/admin,0["a"]',
  '29007199254740993["a"]', '218446744073709551615["a"]', '218446744073709551616["a"]',
  "2", "2/admin", "2/admin,", "212", '2[]', '2{}', '2"foo"', "2null", '2[null]', '2[true]', '2[{}]', '2[[]]',
  '2["connect"]', '2["connect_error"]', '2["disconnect"]', '2["disconnecting"]', '2["newListener"]',
  '2["removeListener"]', '2["conn\\u0065ct"]', '2["Connect"]', '2["connect "]', '2["hello\\u0000"]',
  '2abc["foo"]', '2["foo"', '2["foo",]', '2["foo"]x', "2[\"foo\"]\u2028", '2[01]', '2[.5]', '2[1.]',
  '2["\\x"]', '2["a\tb"]', '2[1e5, "x"]', '2[-0]',
  "3[]", "312[]", '3/admin,13["bar"]', '3{}', '3"x"', "3", "312", "3null",
  '4{"message":"Not authorized"}', '4/admin,{"message":"not authorized","data":{"reason":"x"}}',
  '4/admin,"nope"', "4", "4[]", "4null", "41", "4abc", "4 \"x\"",
  `51-["baz",${placeholder(0)}]`, `52-/admin,["baz",${placeholder(0)},${placeholder(1)}]`,
  `61-15["bar",${placeholder(0)}]`, `62-789[${placeholder(0)},${placeholder(1)}]`,
  '50-["a"]', '50-[]', '60-[]', '51-', "5-[\"a\"]", '5["a"]', '5x-["a"]', '51["a"]', '5 1-["a"]',
  `510-["a",${placeholder(9)}]`, `511-["a",${placeholder(0)}]`, `5010-["a"]`,
  `51-["a",{"num":0,"_placeholder":true}]`, `51-["a",{ "_placeholder" : true , "num" : 0 }]`,
  `51-["a",{"_placeholder":true,"num":1}]`, `51-["a",{"_placeholder":true}]`,
  `51-["a",{"_placeholder":true,"num":"0"}]`, `51-["a",{"_placeholder":false,"num":5}]`,
  `51-["a",{"_placeholder":true,"num":0.5}]`, `51-["a",{"_placeholder":true,"num":-1}]`,
  `51-["a",{"_placeholder":true,"num":0,"x":${placeholder(7)}}]`,
  "6", "7", "8[]", "9", "a", "", " ", "-1", "/",
];

const decode = inputs.map((input) => {
  try {
    const p = new Decoder().decodeString(input);
    const desc = { type: p.type, nsp: p.nsp };
    if (p.id !== undefined) desc.id = p.id;
    if (p.attachments !== undefined) desc.attachments = p.attachments;
    if (p.data !== undefined) desc.data = p.data;
    const res = { input, ok: true, packet: desc };
    if (p.attachments > 0) {
      // Feed the attachments too: placeholders are checked on reassembly.
      const d = new Decoder();
      let done = false;
      d.on("decoded", () => (done = true));
      try {
        d.add(input);
        for (let i = 0; i < p.attachments; i++) d.add(Buffer.from([i]));
        res.reassembled = done;
      } catch (err) {
        res.reassembled = false;
        res.error = err.message;
      }
    }
    return res;
  } catch (err) {
    return { input, ok: false, error: err.message };
  }
});

process.stdout.write(
  JSON.stringify(
    {
      generator: "integration/node/gen-parser-golden.js",
      parser: "socket.io-parser " + parserVersion,
      encode,
      decode,
    },
    null,
    2,
  ) + "\n",
);
