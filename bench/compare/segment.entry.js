// Segment analytics-next as an npm user sets it up, with the settings object given inline so it
// never fetches cdn.segment.com, and every request going to the bench's local sink.
import { AnalyticsBrowser } from '@segment/analytics-next';

const sink = new URL(window.bench.sink);
// Segment builds `${protocol}://${apiHost}/t`; the host is the sink, under its own path.
const segmentio = { apiHost: `${sink.host}/segment/v1`, protocol: 'http' };

const analytics = AnalyticsBrowser.load(
  {
    writeKey: 'bench',
    cdnSettings: { integrations: { 'Segment.io': { apiKey: 'bench', ...segmentio } } },
  },
  // The same again as an init option: Segment takes its metrics reporter's host from here only
  // (it would otherwise post to api.segment.io).
  { integrations: { 'Segment.io': segmentio } },
);

analytics.then(
  () => {
    window.bench.track = (i) => {
      analytics.track(window.bench.event, window.bench.payload(i));
    };
    window.bench.markReady();
  },
  (e) => console.error('segment did not load', e),
);
