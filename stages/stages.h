/*
 * stages.h: the stages of the two sub-topologies, in chain order.
 *
 *   A "rate":  decode -> dedup -> validate -> sessionize -> price
 *   B "bill":  decode -> dedup -> bill (aggregate and close)
 */
#ifndef CF_STAGES_H
#define CF_STAGES_H

#include "stage.h"

extern const cf_stage cf_stage_decode;
extern const cf_stage cf_stage_dedup;
extern const cf_stage cf_stage_validate;
extern const cf_stage cf_stage_sessionize;
extern const cf_stage cf_stage_price;
extern const cf_stage cf_stage_bill;

#endif
