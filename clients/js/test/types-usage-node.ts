// Compiled (not run) by `npm run typecheck`: the Node entry's extra export.
import { HeraldClient, wsTransport, type Transport } from '@herald/client';

const t: Transport = wsTransport('ws://127.0.0.1:8080/v1/ws', ['herald.v1'], { Authorization: 'Bearer x' });
t.close(1000, 'done');
const fromNode = new HeraldClient({ url: 'ws://127.0.0.1:8080/v1/ws', device: 'worker-1' });
void fromNode.close();
