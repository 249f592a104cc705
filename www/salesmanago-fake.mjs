// A fake SALESmanago API v2 for the demo and the end-to-end tests: it checks what SALESmanago
// checks (the sha, owner, a contact, a valid contactEvent), answers with eventIds, and keeps every
// call so the demo panel can show an event's whole path. Point the receiver's SM_API_ENDPOINT here.
import { createHash } from 'node:crypto';
import { contactEventProblem } from './collector.mjs';

export const DEMO_ACCOUNT = { clientId: 'demo-client', apiKey: 'demo-key', apiSecret: 'demo-secret', owner: 'owner@oud-store.example' };

export function fakeSalesmanago(account = DEMO_ACCOUNT) {
  const sha = createHash('sha1').update(account.apiKey + account.clientId + account.apiSecret).digest('hex');
  const calls = [];
  let next = 0;
  return {
    calls,
    reset() {
      calls.length = 0;
    },
    /** Handles /api/v2/contact/<method>; returns false for other paths. */
    async handle(req, res, url, readBody) {
      const m = url.pathname.match(/^\/api\/v2\/contact\/(addContactExtEvent|updateContactExtEvent)$/);
      if (!m || req.method !== 'POST') return false;
      const answer = (body) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
        return true;
      };
      let body;
      try {
        body = JSON.parse(await readBody(req));
      } catch {
        return answer({ success: false, message: ['not JSON'] });
      }
      const refuse = (message) => {
        calls.push({ seq: calls.length + 1, method: m[1], refused: message, at: Date.now() });
        return answer({ success: false, message: [message] });
      };
      if (body.clientId !== account.clientId || body.apiKey !== account.apiKey || body.sha !== sha) return refuse('authentication failed');
      if (body.owner !== account.owner || !Number.isInteger(body.requestTime)) return refuse('owner and requestTime are required');
      if (!body.contactId && !body.email) return refuse('a contact is required');
      const { eventId, ...event } = body.contactEvent ?? {};
      const problem = contactEventProblem(event, 'contactEvent');
      if (problem) return refuse(problem);
      if (m[1] === 'updateContactExtEvent' && !calls.some((c) => c.eventId === eventId)) return refuse('unknown eventId');
      const id = m[1] === 'addContactExtEvent' ? `sm-${++next}` : eventId;
      calls.push({ seq: calls.length + 1, method: m[1], eventId: id, contactEvent: event, contactId: body.contactId, email: body.email, at: Date.now() });
      return answer({ success: true, eventId: id });
    },
  };
}
