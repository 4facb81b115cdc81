import { AuthenticationV1Api, KubeConfig } from '@kubernetes/client-node';
import { errorMessage } from '../core/errors.ts';
import { DEFAULT_AUDIENCE } from './service-account-token.ts';
import { callerFromUsername, type TokenVerdict, type TokenVerifier } from './token-verifier.ts';

export interface TokenReviewOptions {
  /** A kubeconfig file; default: in-cluster config, then $KUBECONFIG, then ~/.kube/config. */
  kubeconfigFile?: string;
  audience?: string;
}

/**
 * Inside a cluster the API server knows the tokens: a TokenReview with our audience
 * says whether the token is valid, for that audience, and whose it is.
 */
export class TokenReviewVerifier implements TokenVerifier {
  readonly #api: AuthenticationV1Api;
  readonly #audience: string;

  constructor(options: TokenReviewOptions = {}) {
    const config = new KubeConfig();
    if (options.kubeconfigFile) config.loadFromFile(options.kubeconfigFile);
    else config.loadFromDefault();
    this.#api = config.makeApiClient(AuthenticationV1Api);
    this.#audience = options.audience ?? DEFAULT_AUDIENCE;
  }

  async verify(token: string): Promise<TokenVerdict> {
    let review;
    try {
      review = await this.#api.createTokenReview({
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [this.#audience] } },
      });
    } catch (err) {
      return { ok: false, reason: 'token_review_failed', message: `TokenReview failed: ${errorMessage(err)}` };
    }
    const status = review.status ?? {};
    if (!status.authenticated) {
      return { ok: false, reason: 'token_not_authenticated', message: `the API server did not authenticate the token: ${status.error ?? 'no reason given'}` };
    }
    // An API server that ignores spec.audiences answers without status.audiences; only an explicit match counts.
    if (!(status.audiences ?? []).includes(this.#audience)) {
      return { ok: false, reason: 'token_wrong_audience', message: `token is not for audience "${this.#audience}" (API server says ${JSON.stringify(status.audiences ?? [])})` };
    }
    const username = status.user?.username ?? '';
    const caller = callerFromUsername(username);
    if (!caller) return { ok: false, reason: 'token_not_service_account', message: `token belongs to "${username}", not a service account` };
    return { ok: true, caller };
  }
}
