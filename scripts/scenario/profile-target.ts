import type { VariantSpec } from './variants.js';

/**
 * Which variant `npm run profile` profiles. With `--variant` filters: the first match. Without: the gateway (a
 * profile of the bare-server baseline or a peer says nothing about the gateway), preferring the scenario's
 * reference variant when it is a gateway variant, else the first gateway variant of the matrix.
 */
export function profileTarget(candidates: VariantSpec[], filtered: boolean, reference: string | undefined): { variant: VariantSpec; note: string | null } {
  if (candidates.length === 0) throw new Error('--variant matches no variant of this scenario');
  if (filtered) {
    const variant = candidates[0]!;
    const note =
      candidates.length > 1
        ? `--variant matches ${candidates.length} variants (${candidates.map((v) => v.id).join(', ')}); profiling the first, ${variant.id}`
        : null;
    return { variant, note };
  }
  const gateways = candidates.filter((v) => v.kind === 'gateway');
  if (gateways.length === 0) throw new Error('this scenario has no gateway variant to profile; pass --variant');
  const variant = gateways.find((v) => v.id === reference) ?? gateways[0]!;
  return {
    variant,
    note:
      gateways.length > 1
        ? `no --variant: profiling the gateway variant ${variant.id} (others: ${gateways
            .filter((v) => v !== variant)
            .map((v) => v.id)
            .join(', ')})`
        : null,
  };
}
