// CivicVault: check access-history proofs in the browser, without taking the server's word for them.
//
// Every element `<span class="cv-proof" data-state="pending" data-proof-url="...">` on the page is
// checked: its proof (GET data-proof-url, the JSON of /proofs/entries/<id>.json) is fetched, then
//   1. the entry's leaf hash is recomputed from its salt and body (docs/ledger-format.md, section 2):
//      leaf = SHA-256(0x00 || 0x01 || SHA-256("civicvault-ledger-entry-v1" || 0x00 || salt || body));
//   2. the root is recomputed from the inclusion path (RFC 9162, section 2.1.3.2) at the checkpoint's
//      size, and compared with the root in the checkpoint;
//   3. the checkpoint (a C2SP signed note) must carry a valid BLS12-381 signature (ciphersuite
//      BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_: 48-byte G1 keys, 96-byte G2 signatures) by the
//      ledger key this page names in <meta name="civicvault-ledger-key">, not a key named in the JSON.
// Then the element's data-state is "verified", "failed" (with the reason), "pending" (no signed
// checkpoint covers the entry yet) or "unavailable" (no proof could be fetched).
//
// The pure functions are exported for tests and for anyone who wants to check by hand:
// verifyInclusion, verifyCheckpoint, rootFromInclusionProof, parseNote, verifySignedNote, entryLeafHash.

const NOBLE_URL = new URL("../vendor/noble/bls12-381.js", import.meta.url).href;
const DST = "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
const ENTRY_DOMAIN = "civicvault-ledger-entry-v1";
const LOG_SIGNATURE_TYPE = "\xffcivicvault-note-bls12381-pop/v1"; // 0xFF, then the ASCII identifier
const LEGACY_LOG_SIGNATURE_TYPE = "\xb1"; // checkpoint format 1 (same signed bytes, another key id)
const COSIGNATURE_TYPE = "\xffcivicvault-cosignature-bls12381-pop/v1";
const COSIGNATURE_HEADER = "civicvault-cosignature/v1\n"; // a witness signs this line, then the note text
const EM_DASH = "\u2014";
const HASH_SIZE = 32;
const PUBLIC_KEY_SIZE = 48;
const SIGNATURE_SIZE = 96;
const MAX_NOTE_SIZE = 64 * 1024;
const MAX_SIGNATURES = 64;
const MAX_TREE_SIZE = 2n ** 63n - 1n;
const CONCURRENCY = 4;

const encoder = new TextEncoder();

/** A proof that does not verify, or data that is malformed; the message says which. */
export class ProofError extends Error {}

// --- bytes ---------------------------------------------------------------------------------------

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function latin1(text) {
  return Uint8Array.from(text, (ch) => ch.charCodeAt(0));
}

export function fromHex(text) {
  if (typeof text !== "string" || text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    throw new ProofError("not hex");
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(i * 2, 2), 16);
  return out;
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function fromBase64(text) {
  if (typeof text !== "string" || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
    throw new ProofError("not standard base64");
  }
  const raw = atob(text);
  const bytes = latin1(raw);
  if (btoa(raw) !== text) throw new ProofError("not canonical base64");
  return bytes;
}

function toBase64(bytes) {
  return btoa(String.fromCharCode(...bytes));
}

/** Bytes from a Uint8Array, an array of numbers or a hex string. */
function asBytes(value, what, size) {
  let bytes;
  if (value instanceof Uint8Array) bytes = value;
  else if (Array.isArray(value)) bytes = Uint8Array.from(value);
  else if (typeof value === "string") bytes = fromHex(value);
  else throw new ProofError(`${what} is not bytes`);
  if (size !== undefined && bytes.length !== size) throw new ProofError(`${what} is not ${size} bytes`);
  return bytes;
}

function equal(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

async function sha256(...parts) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", concat(...parts)));
}

// --- RFC 9162 hashes and inclusion proofs --------------------------------------------------------

/** SHA-256(0x00 || entry): the hash of one leaf. */
export function leafHash(entry) {
  return sha256(Uint8Array.of(0), asBytes(entry, "the entry"));
}

/** SHA-256(0x01 || left || right): the hash of an interior node. */
export function nodeHash(left, right) {
  return sha256(Uint8Array.of(1), asBytes(left, "a hash", HASH_SIZE), asBytes(right, "a hash", HASH_SIZE));
}

/** The leaf hash of a ledger entry from its salt and canonical body (docs/ledger-format.md, section 2). */
export async function entryLeafHash(salt, body) {
  const data = typeof body === "string" ? encoder.encode(body) : asBytes(body, "the body");
  const commitment = await sha256(encoder.encode(ENTRY_DOMAIN), Uint8Array.of(0), asBytes(salt, "the salt", 32), data);
  return leafHash(concat(Uint8Array.of(1), commitment));
}

function count(value, what) {
  let n;
  try {
    n = BigInt(value);
  } catch {
    throw new ProofError(`${what} is not an integer`);
  }
  if (typeof value === "number" && !Number.isSafeInteger(value)) throw new ProofError(`${what} is not an integer`);
  if (n < 0n || n > 2n ** 64n - 1n) throw new ProofError(`${what} is out of range`);
  return n;
}

/** The root an inclusion proof implies (RFC 9162, section 2.1.3.2); throws ProofError when it cannot. */
export async function rootFromInclusionProof(leaf, index, size, proof) {
  const i = count(index, "the leaf index");
  const n = count(size, "the tree size");
  if (i >= n) throw new ProofError(`leaf ${i} is not in a tree of ${n} entries`);
  if (!Array.isArray(proof)) throw new ProofError("the inclusion path is not a list");
  let fn = i;
  let sn = n - 1n;
  let r = asBytes(leaf, "the leaf hash", HASH_SIZE);
  for (const item of proof) {
    const p = asBytes(item, "a path hash", HASH_SIZE);
    if (sn === 0n) throw new ProofError("the inclusion path is too long");
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new ProofError("the inclusion path is too short");
  return r;
}

/** Whether `proof` shows the leaf hash at `index` in the tree of `size` entries whose root is `root`. */
export async function verifyInclusion(leaf, index, size, proof, root) {
  try {
    const computed = await rootFromInclusionProof(leaf, index, size, proof);
    return equal(computed, asBytes(root, "the root", HASH_SIZE));
  } catch (error) {
    if (error instanceof ProofError) return false;
    throw error;
  }
}

// --- checkpoints: C2SP signed notes, BLS12-381 -----------------------------------------------------

let noble = null;
function bls() {
  noble ??= import(NOBLE_URL).then((module) => module.bls12_381.longSignatures); // G1 keys, G2 signatures
  return noble;
}

/** Whether `signature` (96 bytes) is the BLS signature of `note` (the signed text or bytes) by `publicKey` (48 bytes). */
export async function verifyCheckpoint(note, signature, publicKey) {
  let message, sig, key;
  try {
    message = typeof note === "string" ? encoder.encode(note) : asBytes(note, "the note");
    sig = asBytes(signature, "the signature", SIGNATURE_SIZE);
    key = asBytes(publicKey, "the public key", PUBLIC_KEY_SIZE);
  } catch (error) {
    if (error instanceof ProofError) return false;
    throw error;
  }
  const scheme = await bls();
  try {
    return scheme.verify(sig, scheme.hash(message, DST), key) === true;
  } catch {
    return false; // a signature or key that is not a point of its group
  }
}

/** The key id of the ledger's key under `name` (signed-note: SHA-256(name || 0x0A || type || key)[:4]). */
export async function keyId(name, publicKey, type = LOG_SIGNATURE_TYPE) {
  const digest = await sha256(encoder.encode(name + "\n"), latin1(type), asBytes(publicKey, "the public key"));
  return digest.slice(0, 4);
}

const SIZE = /^(?:0|[1-9][0-9]{0,18})$/;
const ROOT = /^[A-Za-z0-9+/]{43}=$/;

function checkText(text, what) {
  for (const ch of text) {
    if (ch !== "\n" && ch.charCodeAt(0) < 0x20) throw new ProofError(`the ${what} holds a control character`);
  }
}

/** A signed note's checkpoint and signature lines, checked for form only (as crypto/checkpoint.py parse_note). */
export function parseNote(text) {
  if (typeof text !== "string") throw new ProofError("the checkpoint is not text");
  checkText(text, "checkpoint");
  if (encoder.encode(text).length > MAX_NOTE_SIZE) throw new ProofError("the checkpoint is too large");
  const cut = text.lastIndexOf("\n\n");
  if (cut < 0) throw new ProofError("the checkpoint has no blank line before its signatures");
  const body = text.slice(0, cut + 1);
  const lines = body.slice(0, -1).split("\n");
  if (lines.length < 3 || lines.some((line) => line === "")) throw new ProofError("the checkpoint text is malformed");
  const [origin, sizeLine, rootLine] = lines;
  if (!SIZE.test(sizeLine) || BigInt(sizeLine) > MAX_TREE_SIZE) throw new ProofError("the checkpoint's size is malformed");
  if (!ROOT.test(rootLine)) throw new ProofError("the checkpoint's root is malformed");
  const root = fromBase64(rootLine);
  const rest = text.slice(cut + 2);
  if (!rest.endsWith("\n")) throw new ProofError("the checkpoint's signature lines are malformed");
  const signatures = rest
    .slice(0, -1)
    .split("\n")
    .map((line) => {
      const parts = line.split(" ");
      if (parts.length !== 3 || parts[0] !== EM_DASH || !parts[1] || /[\s\x85+]/u.test(parts[1])) {
        throw new ProofError("a signature line of the checkpoint is malformed");
      }
      const blob = fromBase64(parts[2]);
      if (blob.length <= 4) throw new ProofError("a signature line of the checkpoint is malformed");
      return { name: parts[1], keyId: blob.slice(0, 4), signature: blob.slice(4) };
    });
  if (signatures.length > MAX_SIGNATURES) throw new ProofError("the checkpoint has too many signatures");
  return { body, origin, size: BigInt(sizeLine), root, signatures };
}

/**
 * Parse a signed note and check the ledger key's signature on it (its origin names the key); throws ProofError.
 * Lines of other keys are ignored; every line of the ledger key must verify, and there must be one.
 * The key's checkpoint-format-1 key id is accepted too (same signed bytes), as `audit verify-bundle` does.
 */
export async function verifySignedNote(text, publicKey, { acceptLegacyKeyId = true } = {}) {
  const note = parseNote(text);
  const key = asBytes(publicKey, "the ledger key", PUBLIC_KEY_SIZE);
  const known = [await keyId(note.origin, key)];
  if (acceptLegacyKeyId) known.push(await keyId(note.origin, key, LEGACY_LOG_SIGNATURE_TYPE));
  const mine = note.signatures.filter((s) => s.name === note.origin && known.some((id) => equal(id, s.keyId)));
  if (mine.length === 0) throw new ProofError("the checkpoint is not signed by this page's ledger key");
  for (const line of mine) {
    if (!(await verifyCheckpoint(note.body, line.signature, key))) {
      throw new ProofError("the checkpoint's signature does not verify");
    }
  }
  return note;
}

/**
 * The witnesses of `roster` ({name: public key}) who cosigned the signed note `text`; throws ProofError when
 * a cosignature of one of them does not verify (as crypto/checkpoint.py verify_cosignatures, which also
 * asks for a threshold: here the caller compares the count with its own). Lines of other keys are ignored;
 * the known ones are aggregated into one BLS signature over "civicvault-cosignature/v1\n" + the note text.
 * The roster's keys must have proved possession of their secrets (the vault checks that at registration).
 */
export async function verifyCosignatures(text, roster) {
  const note = parseNote(text);
  const known = new Map();
  for (const line of note.signatures) {
    const key = Object.hasOwn(roster, line.name) ? roster[line.name] : null;
    if (!key || !equal(line.keyId, await keyId(line.name, key, COSIGNATURE_TYPE))) continue;
    const seen = known.get(line.name);
    if (seen && !equal(seen.signature, line.signature)) throw new ProofError(`${line.name} cosigned twice, differently`);
    known.set(line.name, { key: asBytes(key, "a witness key", PUBLIC_KEY_SIZE), signature: line.signature });
  }
  const names = [...known.keys()].sort();
  if (names.length === 0) return names;
  const scheme = await bls();
  let valid = false;
  try {
    const keys = scheme.aggregatePublicKeys(names.map((n) => known.get(n).key));
    const signatures = names.map((n) => asBytes(known.get(n).signature, "a cosignature", SIGNATURE_SIZE));
    const signature = scheme.aggregateSignatures(signatures);
    valid = scheme.verify(signature, scheme.hash(encoder.encode(COSIGNATURE_HEADER + note.body), DST), keys) === true;
  } catch {
    valid = false;
  }
  if (!valid) throw new ProofError("the witnesses' cosignatures do not verify");
  return names;
}

// --- one proof, from the JSON of /proofs/entries/<id>.json ----------------------------------------------

const checkpoints = new Map(); // tree size -> {body, note, promise}: each size's note is verified once

function checkpointOf(note, publicKey) {
  const parsed = parseNote(note);
  const key = parsed.size.toString();
  const known = checkpoints.get(key);
  if (known && known.body !== parsed.body) {
    throw new ProofError(`the server showed two different ledgers of size ${key}`);
  }
  if (known && known.note === note) return known.promise;
  const promise = verifySignedNote(note, publicKey);
  checkpoints.set(key, { body: parsed.body, note, promise });
  return promise;
}

/**
 * Check one proof document against the ledger key `publicKey` (hex); resolves to what was proved, or throws.
 * `witnesses` ({roster: {name: key}, threshold}), when given, are the witnesses whose cosignatures are checked.
 */
export async function checkProof(doc, publicKey, expectedLeafHash, witnesses) {
  if (!doc || typeof doc !== "object") throw new ProofError("the server sent no proof");
  if (doc.state === "pending") return { state: "pending", waitingFor: doc.waiting_for };
  if (doc.state !== "sequenced") throw new ProofError("the server sent no proof");
  if (!publicKey) throw new ProofError("this page names no ledger key");
  if (typeof doc.ledger_public_key !== "string" || doc.ledger_public_key.toLowerCase() !== publicKey.toLowerCase()) {
    throw new ProofError("the proof names another ledger key than this page");
  }
  if (!Array.isArray(doc.events) || doc.events.length !== 1) throw new ProofError("the proof holds no single entry");
  const event = doc.events[0];
  if (typeof event.body !== "string") throw new ProofError("the entry's body is missing");
  let body;
  try {
    body = JSON.parse(event.body);
  } catch {
    throw new ProofError("the entry's body is not JSON");
  }
  if (!body || body.v !== 1 || body.subject_id !== doc.subject_id) {
    throw new ProofError("the entry's body is not about this resident");
  }
  // 1. The leaf, from the data.
  const leaf = await entryLeafHash(asBytes(event.salt, "the salt", 32), event.body);
  const claimed = [doc.leaf_hash, expectedLeafHash].filter(Boolean);
  if (claimed.some((h) => typeof h !== "string" || h.toLowerCase() !== toHex(leaf))) {
    throw new ProofError("the entry's data does not hash to its leaf hash");
  }
  if (event.leaf_index !== doc.leaf_index) throw new ProofError("the proof names two entry indices");
  // 2. The checkpoint: signed by the page's key; its size is the size the path is checked at.
  const note = await checkpointOf(doc.checkpoint, publicKey);
  if (String(doc.tree_size) !== note.size.toString()) {
    throw new ProofError(`the proof is for ${doc.tree_size} entries, the checkpoint for ${note.size}`);
  }
  const line = doc.checkpoint_signature;
  const named =
    line &&
    note.signatures.some(
      (s) => s.name === line.name && toHex(s.keyId) === line.key_id && toBase64(s.signature) === line.signature,
    );
  if (!named) throw new ProofError("the proof's signature is not the checkpoint's");
  // 3. The path, from the leaf to the signed root.
  let root;
  try {
    root = await rootFromInclusionProof(leaf, event.leaf_index, note.size, event.audit_path);
  } catch (error) {
    if (error instanceof ProofError) throw new ProofError(`the inclusion path is malformed: ${error.message}`);
    throw error;
  }
  if (!equal(root, note.root)) throw new ProofError("the inclusion path does not lead to the checkpoint's root");
  // 4. The witnesses this page names, if any: every cosignature of theirs must verify.
  const cosigners = witnesses ? await cosignersOf(doc.checkpoint, witnesses.roster) : null;
  return {
    cosigners,
    threshold: witnesses ? witnesses.threshold : null,
    state: "verified",
    index: event.leaf_index,
    treeSize: doc.tree_size,
    checkpointSize: note.size.toString(),
    origin: note.origin,
    kind: body.kind,
    occurredAt: body.occurred_at,
  };
}

const cosigned = new Map(); // note -> promise of the witnesses' names

function cosignersOf(note, roster) {
  if (!cosigned.has(note)) cosigned.set(note, verifyCosignatures(note, roster));
  return cosigned.get(note);
}

// --- the page -------------------------------------------------------------------------------------

function pageKey() {
  const meta = document.querySelector('meta[name="civicvault-ledger-key"]');
  return meta ? meta.getAttribute("content") : document.body.getAttribute("data-ledger-key");
}

/** The witnesses the page names (<meta name="civicvault-witness-keys" content="name:key ..." data-threshold>). */
function pageWitnesses() {
  const meta = document.querySelector('meta[name="civicvault-witness-keys"]');
  if (!meta) return null;
  const roster = {};
  for (const item of (meta.getAttribute("content") || "").split(" ").filter(Boolean)) {
    const at = item.lastIndexOf(":");
    roster[item.slice(0, at)] = item.slice(at + 1);
  }
  const threshold = Number(meta.getAttribute("data-threshold") || "1");
  return Object.keys(roster).length ? { roster, threshold } : null;
}

function show(element, state, text, detail, title) {
  element.setAttribute("data-state", state);
  element.textContent = text;
  if (detail) {
    const hidden = document.createElement("span");
    hidden.className = "usa-sr-only";
    hidden.textContent = detail;
    element.append(hidden);
  }
  if (title) element.setAttribute("title", title);
}

async function fetchProof(url) {
  const target = new URL(url, window.location.href);
  if (target.origin !== window.location.origin) throw new Error("the proof is not on this site");
  let response;
  try {
    response = await fetch(target, {
      credentials: "same-origin",
      cache: "no-store",
      redirect: "manual",
      headers: { Accept: "application/json" },
    });
  } catch {
    throw new Error("the server could not be reached");
  }
  if (response.type === "opaqueredirect") throw new Error("sign in again to check it");
  if (response.status === 404) throw new Error("there is no such entry");
  if (!response.ok) throw new Error(`the server answered ${response.status}`);
  try {
    return await response.json();
  } catch {
    throw new Error("the server did not send a proof");
  }
}

async function check(element, key, witnesses) {
  let doc;
  try {
    doc = await fetchProof(element.getAttribute("data-proof-url"));
  } catch (error) {
    show(element, "unavailable", `Proof not available: ${error.message}`);
    return;
  }
  try {
    const result = await checkProof(doc, key, element.getAttribute("data-leaf-hash"), witnesses);
    if (result.state === "pending") {
      const text =
        result.waitingFor === "sequencer" ? "Waiting for its place in the ledger" : "Not in a signed checkpoint yet";
      show(element, "pending", text, null, "The next signed checkpoint will cover this entry; check again later.");
      return;
    }
    let witnessed = "";
    if (result.cosigners) {
      witnessed =
        `; cosigned by ${result.cosigners.length} of this page's witnesses` +
        (result.cosigners.length >= result.threshold ? "" : ` (${result.threshold} needed: not witnessed yet)`);
    }
    show(
      element,
      "verified",
      "\u2713 Proof verified",
      `: entry ${result.index} is in the ledger of ${result.checkpointSize} entries signed by the vault's key${witnessed}`,
      `Entry ${result.index}; tree size ${result.treeSize}; checkpoint size ${result.checkpointSize}; ` +
        `signed by ${result.origin}'s ledger key${witnessed}`,
    );
  } catch (error) {
    const reason = error instanceof ProofError ? error.message : "the proof could not be checked";
    show(element, "failed", `\u2717 Proof failed: ${reason}`, null, `Proof of ${element.getAttribute("data-proof-url")} failed: ${reason}`);
  }
}

const queue = [];
let running = 0;

function pump() {
  while (running < CONCURRENCY && queue.length) {
    const [element, key, witnesses] = queue.shift();
    running++;
    check(element, key, witnesses).finally(() => {
      running--;
      pump();
    });
  }
}

/** Check every proof element under `root` not yet queued. */
export function checkAll(root = document) {
  const key = pageKey();
  const witnesses = pageWitnesses();
  for (const element of root.querySelectorAll(".cv-proof[data-proof-url]")) {
    if (element.hasAttribute("data-proof-queued")) continue;
    element.setAttribute("data-proof-queued", "");
    show(element, "pending", "Checking the proof\u2026");
    queue.push([element, key, witnesses]);
  }
  pump();
}

if (typeof document !== "undefined") {
  checkAll();
  // Lines that htmx adds later (a next page of the history) are checked too.
  document.body.addEventListener("htmx:afterSettle", (event) => checkAll(event.target));
}
