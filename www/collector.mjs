// The local receiver's logic: validate protocol v1 bodies the way SALESmanago validates external
// events, deduplicate by event id, and remember what arrived. No HTTP here (see server.mjs), so
// the rules can be tested on their own.

export const TYPES = new Set([
  'PURCHASE', 'CART', 'VISIT', 'PHONE_CALL', 'OTHER', 'RESERVATION', 'CANCELLED', 'ACTIVATION',
  'MEETING', 'OFFER', 'DOWNLOAD', 'LOGIN', 'TRANSACTION', 'CANCELLATION', 'RETURN', 'SURVEY',
  'APP_STATUS', 'APP_TYPE_WEB', 'APP_TYPE_MANUAL', 'APP_TYPE_RETENTION', 'APP_TYPE_UPSALE',
  'LOAN_STATUS', 'LOAN_ORDER', 'FIRST_LOAN', 'REPEATED_LOAN',
]);

// SALESmanago's limits (spec/salesmanago.md), in UTF-16 units: JavaScript's string length.
const TEXT_LIMITS = {
  description: 2048,
  products: 512,
  location: 36,
  externalId: 255,
  shopDomain: 255,
};
for (let i = 1; i <= 20; i++) TEXT_LIMITS[`detail${i}`] = 255;

export const MAX_EVENTS = 1000;
const EARLIEST_MS = Date.UTC(2001, 0, 1); // below this, a "date" is seconds, not milliseconds

/** Why a contactEvent would be refused, or null. `at` names where it sits in the body. */
export function contactEventProblem(e, at) {
  if (!e || typeof e !== 'object' || Array.isArray(e)) return `${at} must be an object`;
  const type = e.contactExtEventType;
  if (!TYPES.has(type)) {
    const hint = typeof type === 'string' && TYPES.has(type.toUpperCase()) ? ` (capitals: ${type.toUpperCase()})` : '';
    return `${at}.contactExtEventType ${JSON.stringify(type)} is not a SALESmanago type${hint}`;
  }
  if (!Number.isInteger(e.date) || e.date < EARLIEST_MS) {
    return `${at}.date must be milliseconds since the epoch, got ${JSON.stringify(e.date)}`;
  }
  if ('value' in e) {
    const v = e.value;
    if (typeof v !== 'number' || !Number.isFinite(v)) return `${at}.value must be a number, got ${JSON.stringify(v)}`;
    if (Math.abs(v) >= 1e19) return `${at}.value has more than 19 integer digits`;
    if (Math.abs(Math.round(v * 100) - v * 100) > 1e-6 * Math.max(1, Math.abs(v))) {
      return `${at}.value must have at most 2 decimals, got ${v}`;
    }
  }
  for (const [key, value] of Object.entries(e)) {
    if (key === 'contactExtEventType' || key === 'date' || key === 'value') continue;
    const limit = TEXT_LIMITS[key];
    if (limit === undefined) return `${at}.${key} is not a SALESmanago contactEvent field`;
    if (typeof value !== 'string') return `${at}.${key} must be text, got ${typeof value}`;
    if (value.length === 0) return `${at}.${key} is empty (leave it out instead)`;
    if (value.length > limit) return `${at}.${key} is ${value.length} characters; the limit is ${limit}`;
  }
  if (typeof e.products === 'string' && /\s|,,|^,|,$/.test(e.products)) {
    return `${at}.products must be ids separated by single commas, got ${JSON.stringify(e.products.slice(0, 60))}`;
  }
  return null;
}

/** Parses and checks a protocol v1 body. Returns `{ batch }` or `{ error }`. */
export function validateBody(text) {
  let batch;
  try {
    batch = JSON.parse(text);
  } catch {
    return { error: 'the body is not JSON' };
  }
  if (!batch || typeof batch !== 'object' || Array.isArray(batch)) return { error: 'the body must be a JSON object' };
  if (batch.v !== 1) return { error: `v must be 1 (protocol version), got ${JSON.stringify(batch.v)}` };
  if (typeof batch.clientId !== 'string' || !batch.clientId) return { error: 'clientId is missing' };
  if (!Number.isInteger(batch.sentAt)) return { error: 'sentAt must be milliseconds since the epoch' };
  const contact = batch.contact ?? {};
  if (typeof contact !== 'object' || Array.isArray(contact)) return { error: 'contact must be an object' };
  for (const k of ['contactId', 'email']) {
    if (k in contact && (typeof contact[k] !== 'string' || !contact[k])) return { error: `contact.${k} must be non-empty text` };
  }
  if (!Array.isArray(batch.events) || batch.events.length === 0) return { error: 'events must be a non-empty array' };
  if (batch.events.length > MAX_EVENTS) return { error: `events holds ${batch.events.length}; at most ${MAX_EVENTS}` };
  for (const [i, ev] of batch.events.entries()) {
    const at = `events[${i}]`;
    if (!ev || typeof ev !== 'object') return { error: `${at} must be an object` };
    if (typeof ev.id !== 'string' || !ev.id || ev.id.length > 255) return { error: `${at}.id must be text of 1 to 255 characters` };
    if (typeof ev.source !== 'string') return { error: `${at}.source must be text` };
    const problem = contactEventProblem(ev.contactEvent, `${at}.contactEvent`);
    if (problem) return { error: problem };
  }
  return { batch };
}

/** What the receiver has taken: every accepted event once, duplicates counted. */
export class Store {
  constructor() {
    this.reset();
  }

  reset() {
    this.events = []; // { seq, id, source, contactEvent, contact, clientId, receivedAt, via }
    this.byId = new Map();
    this.duplicates = 0;
    this.duplicateIds = [];
    this.requests = 0;
    this.refused = [];
    // One row per request that reached the receiver: { at, ids, status, via, stored }.
    this.log = [];
  }

  /** Takes a validated batch; returns how many were new and how many were seen before. */
  accept(batch, via = 'fetch') {
    let accepted = 0;
    let duplicates = 0;
    for (const ev of batch.events) {
      if (this.byId.has(ev.id)) {
        duplicates++;
        this.duplicates++;
        this.duplicateIds.push(ev.id);
        continue;
      }
      const record = {
        seq: this.events.length + 1,
        id: ev.id,
        source: ev.source,
        contactEvent: ev.contactEvent,
        contact: batch.contact ?? {},
        clientId: batch.clientId,
        receivedAt: Date.now(),
        via,
      };
      this.byId.set(ev.id, record);
      this.events.push(record);
      accepted++;
    }
    return { accepted, duplicates };
  }
}
